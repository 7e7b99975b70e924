//! bbolt files written by real bbolt (the `bboltbench` peer): every read command, the
//! page-cycle incident (check, map, salvage, surgery), and refused writes.
//!
//! Peers are found and run by the workspace's test kit (`untorn-testkit`: env
//! `PEERS_BIN`, default `<workspace>/target/peers`; a missing peer fails under `CI` and
//! prints a loud skip otherwise).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::json::assert_report_schema;
use crate::map::assert_well_formed;
use untorn_testkit::{bboltbench, run_peer};

/// Runs bboltbench; returns (exit success, stdout JSON, stderr).
fn bench(bin: &Path, args: &[&str], db: &Path) -> (bool, Value, String) {
    let out = run_peer(bin, args, db);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Real bbolt's `tx.Check()` on `db`.
fn bbolt_check(bin: &Path, db: &Path) {
    let (ok, v, err) = bench(bin, &["-op", "check"], db);
    assert!(
        ok && v["ok"] == true,
        "bbolt check of {}: {v} {err}",
        db.display()
    );
}

/// What real bbolt reads: (bucket, key hex, value length) for every key.
fn bbolt_keys(bin: &Path, db: &Path) -> BTreeSet<(String, String, usize)> {
    let (ok, _, err) = bench(bin, &["-op", "dump", "-v"], db);
    assert!(ok, "bbolt dump of {}: {err}", db.display());
    err.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((
                f.next()?.to_owned(),
                f.next()?.to_owned(),
                f.next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// `untorn dump --format hex` lines as (bucket path, key hex, value hex); bucket lines
/// as (path, "", sequence).
fn our_dump(db: &Path) -> Vec<(String, String, String)> {
    let out = ok(&["dump", db.to_str().unwrap(), "--format", "hex"], 0);
    out.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let path: Vec<String> = v["bucket"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| {
                    let h = n["hex"].as_str().unwrap();
                    String::from_utf8(from_hex(h)).unwrap_or_else(|_| h.to_owned())
                })
                .collect();
            let path = path.join("/");
            match v.get("key") {
                Some(k) => (
                    path,
                    k["hex"].as_str().unwrap().to_owned(),
                    v["value"]["hex"].as_str().unwrap().to_owned(),
                ),
                None => (path, String::new(), v["sequence"].to_string()),
            }
        })
        .collect()
}

/// Our dump in bbolt's `dump -v` form.
fn as_bbolt_keys(d: &[(String, String, String)]) -> BTreeSet<(String, String, usize)> {
    d.iter()
        .filter(|(_, k, _)| !k.is_empty())
        .map(|(b, k, v)| (b.clone(), k.clone(), v.len() / 2))
        .collect()
}

fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A bbolt file with `n` keys in bucket "bench", written by real bbolt.
fn healthy(bin: &Path, dir: &Path, n: usize) -> PathBuf {
    let db = dir.join("healthy.db");
    let (ok, v, err) = bench(bin, &["-op", "load", "-n", &n.to_string()], &db);
    assert!(ok, "load: {v} {err}");
    db
}

/// The incident, as bboltbench's `corruptcycle -how pgid` makes it.
struct Cycle {
    /// The file before the damage.
    healthy: PathBuf,
    /// The damaged copy.
    db: PathBuf,
    /// The branch page whose element now points back to `ancestor`.
    victim: u64,
    /// That element's index: the one that closes the cycle.
    elem: u64,
    ancestor: u64,
}

fn cyclic(bin: &Path, dir: &Path) -> Cycle {
    let healthy = healthy(bin, dir, 30_000);
    let db = dir.join("cycle.db");
    std::fs::copy(&healthy, &db).unwrap();
    let (ok, v, err) = bench(bin, &["-op", "corruptcycle", "-how", "pgid"], &db);
    assert!(ok, "corruptcycle: {v} {err}");
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    Cycle {
        victim: n("victim_page"),
        elem: n("elem"),
        ancestor: n("ancestor_page"),
        healthy,
        db,
    }
}

fn json_of(args: &[&str], code: i32) -> Value {
    let out = ok(args, code);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"))
}

#[test]
fn every_read_command_works_and_dump_equals_what_bbolt_reads() {
    let Some(bin) = bboltbench() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = healthy(&bin, dir.path(), 3000);
    let p = s(&db);

    let info = json_of(&["info", p, "--json"], 0);
    assert_eq!(info["format"], "bbolt");
    assert_eq!(info["page_size"], 4096);
    assert_eq!(info["buckets"], 1);
    assert_eq!(info["metas"].as_array().unwrap().len(), 2);
    assert!(ok(&["info", p], 0).contains("bbolt"));

    let check = json_of(&["check", p, "--json"], 0);
    assert_report_schema(&check);
    assert_eq!(check["ok"], true);
    assert_eq!(check["keys_checked"], 3000);
    assert_eq!(check["source"], "data_file");
    assert!(ok(&["check", p], 0).starts_with("ok:"));

    let stats = json_of(&["stats", p, "--json"], 0);
    assert_eq!(stats["format"], "bbolt");
    assert_eq!(stats["keys"], 3000);
    assert_eq!(stats["buckets"], 1);
    assert_eq!(stats["leaked_pages"], 0);

    let pages = json_of(&["pages", p, "--json"], 0);
    let pages = pages.as_array().unwrap();
    assert_eq!(pages[0]["type"], "meta");
    let leaf = pages
        .iter()
        .find(|x| x["type"] == "leaf" && x["state"] == "reachable")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let page = json_of(&["page", p, "0", &leaf.to_string(), "--json", "--hex"], 0);
    assert_eq!(page[0]["type"], "meta");
    assert_eq!(page[0]["verify"], "ok");
    assert_eq!(page[0]["hex"].as_str().unwrap().len(), 2 * 4096);
    assert_eq!(page[1]["type"], "leaf");
    assert_eq!(page[1]["verify"], "ok");
    assert!(!page[1]["elements"].as_array().unwrap().is_empty());
    assert!(ok(&["page", p, &leaf.to_string()], 0).contains("type"));

    let buckets = json_of(&["buckets", p, "--json"], 0);
    assert_eq!(buckets[0]["name"], "bench");
    assert_eq!(buckets[0]["keys"], 3000);
    // One key notation: what `keys --hex` prints (0x…), `get` takes; names too.
    let keys = ok(&["keys", p, "0x62656e6368", "--hex"], 0);
    assert_eq!(keys.lines().count(), 3000);

    // dump against real bbolt's own reading (bucket, key, value length).
    let ours = our_dump(&db);
    assert_eq!(ours[0], ("bench".into(), String::new(), "0".into()));
    let bbolt = bbolt_keys(&bin, &db);
    assert_eq!(bbolt.len(), 3000);
    assert_eq!(as_bbolt_keys(&ours), bbolt);
    // keys lists the same keys, in dump's order.
    let dumped: Vec<String> = ours[1..].iter().map(|(_, k, _)| format!("0x{k}")).collect();
    assert_eq!(keys.lines().collect::<Vec<_>>(), dumped);
    // get returns the dumped value.
    let (_, k, v) = &ours[1234];
    let key_arg = format!("0x{k}");
    assert_eq!(
        ok(&["get", p, "bench", &key_arg, "--hex"], 0).trim(),
        format!("0x{v}")
    );
    ok(&["get", p, "bench", "0x00", "--hex"], 1);
    ok(&["get", p, "nobucket", "k"], 1);
    ok(&["keys", p, "nobucket"], 1);
    // The file is unchanged by all of this; real bbolt still checks it clean.
    bbolt_check(&bin, &db);
}

#[test]
fn check_names_the_cycle_quickly_with_the_untorn_schema() {
    let Some(bin) = bboltbench() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Cycle {
        db,
        ancestor,
        victim,
        ..
    } = cyclic(&bin, dir.path());
    let start = Instant::now();
    let report = json_of(&["check", s(&db), "--json"], 1);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_report_schema(&report);
    assert_eq!(report["format"], "bbolt");
    assert_eq!(report["ok"], false);
    let cycles: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "cycle")
        .collect();
    assert_eq!(cycles.len(), 1, "{report}");
    assert_eq!(cycles[0]["page"], ancestor);
    let path: Vec<u64> = cycles[0]["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert!(path.ends_with(&[ancestor, victim, ancestor]), "{path:?}");
    // The same keys as untorn's own report.
    let native = json_of(&["check", sample().p(), "--json"], 0);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&report), keys(&native));
    let human = ok(&["check", s(&db)], 1);
    assert!(human.contains(&format!("{ancestor} -> {victim} -> {ancestor}")));
    // A damaged tree stops dump with an error naming the page (never a loop).
    let o = untorn(&["dump", s(&db)], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("page {ancestor}")));
    // --from-page works as on untorn files: the subtree at the ancestor holds the cycle;
    // the subtree at a page outside it is clean and much smaller than the whole file.
    let sub = json_of(
        &[
            "check",
            s(&db),
            "--json",
            "--from-page",
            &ancestor.to_string(),
        ],
        1,
    );
    assert!(sub["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == "cycle" && f["page"] == ancestor));
    let full_pages = report["pages_checked"].as_u64().unwrap();
    let pages = json_of(&["pages", s(&db), "--json"], 0);
    let clean_leaf = pages
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "leaf" && p["state"] == "reachable")
        .and_then(|p| p["id"].as_u64())
        .unwrap();
    let leaf = json_of(
        &[
            "check",
            s(&db),
            "--json",
            "--from-page",
            &clean_leaf.to_string(),
        ],
        0,
    );
    assert_eq!(leaf["pages_checked"].as_u64().unwrap(), 1);
    assert!(full_pages > 10);
}

/// Headline lines of `untorn check`'s text output (root causes; consequences are
/// indented, the summary line comes last).
fn headlines(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    lines[..lines.len() - 1]
        .iter()
        .copied()
        .filter(|l| !l.starts_with(' '))
        .collect()
}

#[test]
fn check_folds_the_findings_of_one_damaged_page_under_one_headline() {
    let Some(bin) = bboltbench() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The page-cycle incident: one branch element points back at an ancestor. The
    // cycle is the headline; the leaf the element led to is leaked, its consequence.
    let Cycle {
        db,
        ancestor,
        victim,
        ..
    } = cyclic(&bin, dir.path());
    let report = json_of(&["check", s(&db), "--json"], 1);
    assert_report_schema(&report);
    assert_eq!(report["root_causes"], 1, "{report}");
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings[0]["kind"], "cycle");
    assert!(
        findings[1..].iter().all(|f| f["root_cause"] == 0),
        "{report}"
    );
    assert!(
        findings.iter().any(|f| f["kind"] == "unreachable"),
        "{report}"
    );
    let human = ok(&["check", s(&db)], 1);
    let heads = headlines(&human);
    assert_eq!(heads.len(), 1, "{human}");
    assert!(heads[0].contains(&format!("page {victim} references its ancestor {ancestor}")));
    assert!(human.contains("1 root cause:"), "{human}");

    // A misdirected write: a copy of the bucket's root page over a leaf below it. bbolt
    // walks the copy, so a thousand findings follow (pages reached twice, keys out of
    // bounds, leaves too deep, a cycle); one headline names the copy.
    let healthy = dir.path().join("healthy.db");
    let copy = dir.path().join("copy.db");
    std::fs::copy(&healthy, &copy).unwrap();
    let (done, v, err) = bench(&bin, &["-op", "corruptcycle", "-how", "copy"], &copy);
    assert!(done, "corruptcycle: {v} {err}");
    let (overwritten, original) = (
        v["old_pgid"].as_u64().unwrap(),
        v["new_pgid"].as_u64().unwrap(),
    );
    let report = json_of(
        &["check", s(&copy), "--json", "--max-findings", "100000"],
        1,
    );
    assert_report_schema(&report);
    let findings = report["findings"].as_array().unwrap();
    assert!(findings.len() > 100, "{}", findings.len());
    assert_eq!(report["root_causes"], 1, "{report}");
    assert_eq!(findings[0]["kind"], "page_id_mismatch");
    assert_eq!(findings[0]["page"], overwritten);
    let headline = findings[0]["message"].as_str().unwrap();
    assert!(
        headline.contains(&format!(
            "page {overwritten} holds a copy of page {original}"
        )),
        "{headline}"
    );
    let human = ok(&["check", s(&copy)], 1);
    let heads = headlines(&human);
    assert_eq!(heads.len(), 1, "{human}");
    assert!(heads[0].starts_with(&format!("page_id_mismatch page {overwritten}")));
    assert!(human.contains("consequences ("), "{human}");
    eprintln!(
        "copy of page {original} over page {overwritten}: {} findings, 1 headline",
        findings.len()
    );
}

#[test]
fn map_highlights_the_cycle_pages() {
    let Some(bin) = bboltbench() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Cycle {
        db,
        ancestor,
        victim,
        ..
    } = cyclic(&bin, dir.path());
    let svg_path = dir.path().join("map.svg");
    let j = json_of(&["map", s(&db), "--svg", s(&svg_path), "--json"], 0);
    assert_eq!(j["format"], "bbolt");
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert_well_formed(&svg);
    for p in [ancestor, victim] {
        assert!(
            svg.contains(&format!("<title>page {p} on a reference cycle</title>")),
            "page {p} not highlighted"
        );
    }
    assert!(svg.contains(&format!("<title>page {ancestor}: cycle")));
    assert!(svg.contains("reference cycle (arrows follow it)"));
    // Arrows run along the cycle: ancestor -> victim -> ancestor.
    assert_eq!(svg.matches(r#"class="cycle-arrow""#).count(), 2, "{svg}");
    assert_eq!(j["cycles"], 1);
}

#[test]
fn salvage_of_the_cycle_is_a_clean_bbolt_file_with_every_key() {
    let Some(bin) = bboltbench() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Cycle { healthy, db, .. } = cyclic(&bin, dir.path());
    let before = std::fs::read(&db).unwrap();
    let dst = dir.path().join("salvaged.db");
    let r = json_of(&["salvage", s(&db), s(&dst), "--json"], 1);
    assert_eq!(r["format"], "bbolt");
    assert_eq!(r["to"], "bbolt");
    assert_eq!(r["ok"], false);
    assert_eq!(r["lost"].as_array().unwrap().len(), 1, "{r}");
    assert!(r["bbolt"]["orphan_keys"].as_u64().unwrap() > 0);
    // Every key came back through orphan leaves: the verdict says so, not "DATA LOST".
    let txt = ok(&["salvage", s(&db), s(&dir.path().join("t.db"))], 1);
    assert!(!txt.contains("DATA LOST"), "{txt}");
    assert!(txt.contains("refilled from orphan leaves"), "{txt}");
    assert!(txt.contains("30000 keys in 1 bucket\n"), "{txt}");
    // Real bbolt checks the result clean, and it holds every key of the healthy file.
    bbolt_check(&bin, &dst);
    let want = bbolt_keys(&bin, &healthy);
    assert_eq!(bbolt_keys(&bin, &dst), want);
    assert_eq!(r["keys_recovered"], want.len() as u64);
    ok(&["check", s(&dst)], 0);
    // SRC is untouched; DST is not overwritten without --force.
    assert!(std::fs::read(&db).unwrap() == before);
    let o = untorn(&["salvage", s(&db), s(&dst)], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    ok(
        &["salvage", s(&db), s(&dst), "--force", "--orphans", "never"],
        1,
    );
    bbolt_check(&bin, &dst);
    assert!(bbolt_keys(&bin, &dst).is_subset(&want));
    assert_eq!(
        untorn(&["salvage", s(&db), s(&db), "--force"], None)
            .status
            .code(),
        Some(2)
    );
    // A healthy file salvages with nothing lost.
    let copy = dir.path().join("copy.db");
    let out = ok(&["salvage", s(&healthy), s(&copy)], 0);
    assert!(out.contains("nothing lost"), "{out}");
    assert_eq!(bbolt_keys(&bin, &copy), want);
}

#[test]
fn salvage_to_untorn_holds_the_salvaged_keys_and_checks_clean() {
    let Some(bin) = bboltbench() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Cycle { db, .. } = cyclic(&bin, dir.path());
    let as_bbolt = dir.path().join("salvaged.db");
    let as_untorn = dir.path().join("salvaged.untorn");
    ok(&["salvage", s(&db), s(&as_bbolt)], 1);
    let r = json_of(
        &[
            "salvage",
            s(&db),
            s(&as_untorn),
            "--to",
            "untorn",
            "--batch",
            "5000",
            "--json",
        ],
        1,
    );
    assert_eq!(r["to"], "untorn");
    assert!(r["skipped"].as_array().unwrap().is_empty());
    let check = json_of(&["check", s(&as_untorn), "--json"], 0);
    assert_eq!(check["format"], "untorn");
    assert_eq!(check["keys_checked"], r["keys_recovered"]);
    // Byte for byte what the bbolt salvage holds (which real bbolt checks clean).
    bbolt_check(&bin, &as_bbolt);
    assert_eq!(our_dump(&as_untorn), our_dump(&as_bbolt));
}

#[test]
fn surgery_repairs_the_cycle_by_hand() {
    let Some(bin) = bboltbench() else { return };
    let dir = tempfile::tempdir().unwrap();
    // bboltbench names the element it rewrote: the one that closes the cycle.
    let Cycle {
        db, victim, elem, ..
    } = cyclic(&bin, dir.path());
    let victim = victim.to_string();
    let before = std::fs::read(&db).unwrap();
    let step1 = dir.path().join("step1.db");
    let step2 = dir.path().join("step2.db");
    let out = ok(
        &[
            "surgery",
            "clear-page-elements",
            s(&db),
            "--page",
            &victim,
            "--from-index",
            &elem.to_string(),
            "--to-index",
            &(elem + 1).to_string(),
            "--output",
            s(&step1),
        ],
        0,
    );
    assert!(out.contains("freelist rebuild"), "{out}");
    let r = json_of(
        &[
            "surgery",
            "freelist",
            "rebuild",
            s(&step1),
            "--output",
            s(&step2),
            "--json",
        ],
        0,
    );
    assert_eq!(r["op"], "freelist rebuild");
    bbolt_check(&bin, &step2);
    ok(&["check", s(&step2)], 0);
    let metas = json_of(&["surgery", "meta", "validate", s(&step2), "--json"], 0);
    assert_eq!(metas["ok"], true);
    assert!(std::fs::read(&db).unwrap() == before, "SRC was modified");
    // Rebuilding twice is refused (the freelist exists), leaving no DST behind.
    let again = dir.path().join("again.db");
    let o = untorn(
        &["surgery", "freelist", "rebuild", s(&step2), "-o", s(&again)],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(!again.exists());
    // --in-place modifies SRC itself.
    ok(&["surgery", "revert-meta", s(&step2), "--in-place"], 0);
    ok(&["surgery", "meta", "validate", s(&step2)], 0);
}

#[test]
fn writes_to_bbolt_files_are_refused_and_untorn_surgery_keeps_its_source() {
    let Some(bin) = bboltbench() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = healthy(&bin, dir.path(), 100);
    let before = std::fs::read(&db).unwrap();
    for args in [
        vec!["put", s(&db), "bench", "k", "v"],
        vec!["delete", s(&db), "bench", "k"],
        vec!["load", s(&db)],
    ] {
        // No stdin: the command must refuse before it reads any.
        let o = untorn(&args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("bbolt database"),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(std::fs::read(&db).unwrap() == before);
    // --from-page is accepted on bbolt files (a subtree walk; see
    // check_names_the_cycle_quickly_with_the_untorn_schema), never a usage error.
    assert!(matches!(
        untorn(&["check", s(&db), "--from-page", "3"], None)
            .status
            .code(),
        Some(0 | 1)
    ));
    let native = sample();
    let out = dir.path().join("x.untorn");
    let native_before = std::fs::read(native.p()).unwrap();
    let o = untorn(&["surgery", "revert-meta", native.p(), "-o", s(&out)], None);
    assert_eq!(o.status.code(), Some(0));
    assert!(std::fs::read(native.p()).unwrap() == native_before);
    let o = untorn(
        &[
            "surgery",
            "freelist",
            "abandon",
            native.p(),
            "-o",
            s(&dir.path().join("abandoned.untorn")),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(std::fs::read(native.p()).unwrap() == native_before);
    // meta validate is read-only and supported on untorn files.
    let o = untorn(&["surgery", "meta", "validate", native.p()], None);
    assert_eq!(o.status.code(), Some(0));
    let o = untorn(&["salvage", native.p(), s(&out), "--to", "bbolt"], None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_bbolt_file_with_a_damaged_newest_meta_is_recognised_and_salvaged_from_the_older() {
    let Some(bin) = bboltbench() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Three commits of 1000 keys: txids 2, 3, 4; the newest (4) is in meta 0.
    let db = healthy(&bin, dir.path(), 3000);
    let info = json_of(&["info", s(&db), "--json"], 0);
    assert_eq!(info["active_meta_slot"], 0, "{info}");
    let mut b = std::fs::read(&db).unwrap();
    b[16..20].copy_from_slice(&[0; 4]); // meta 0's magic: detection must use meta 1
    std::fs::write(&db, b).unwrap();
    let info = json_of(&["info", s(&db), "--json"], 0);
    assert_eq!(info["format"], "bbolt");
    assert_eq!(info["metas"][0]["valid"], false);
    assert_eq!(info["active_meta_slot"], 1);
    let report = json_of(&["check", s(&db), "--json"], 1);
    assert_eq!(report["findings"][0]["kind"], "meta_invalid");
    assert_eq!(report["findings"][0]["page"], 0);
    let dst = dir.path().join("fixed.db");
    let r = json_of(&["salvage", s(&db), s(&dst), "--json"], 1);
    assert_eq!(r["bbolt"]["meta_fallback"], true);
    assert_eq!(r["lost"][0]["page"], 0, "{r}");
    let recovered = r["keys_recovered"].as_u64().unwrap();
    assert!(recovered > 0 && recovered < 3000, "{r}");
    bbolt_check(&bin, &dst);
    assert_eq!(bbolt_keys(&bin, &dst).len() as u64, recovered);
}

#[test]
fn every_surgery_operation_through_the_cli() {
    let Some(bin) = bboltbench() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = healthy(&bin, dir.path(), 3000);
    let ab_db = dir.path().join("ab.db");
    let clear_db = dir.path().join("clear.db");
    let copy_db = dir.path().join("copy.db");
    let elems_db = dir.path().join("elems.db");
    let meta_db = dir.path().join("meta.db");
    let rev_db = dir.path().join("rev.db");
    let x_db = dir.path().join("x.db");
    let pages = json_of(&["pages", s(&db), "--json"], 0);
    let leaves: Vec<String> = pages
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "leaf" && p["state"] == "reachable")
        .map(|p| p["id"].to_string())
        .collect();
    let txid = json_of(&["info", s(&db), "--json"], 0)["txid"]
        .as_u64()
        .unwrap();

    // revert-meta: one transaction back, still a clean file.
    ok(&["surgery", "revert-meta", s(&db), "-o", s(&rev_db)], 0);
    let info = json_of(&["info", s(&rev_db), "--json"], 0);
    assert_eq!(info["txid"], txid - 1);
    bbolt_check(&bin, &rev_db);

    // copy-page: the copy carries its new id and sits in the wrong key range.
    let (from, to) = (&leaves[0], &leaves[1]);
    let args = [
        "surgery",
        "copy-page",
        s(&db),
        "--from-page",
        from,
        "--to-page",
        to,
        "-o",
        s(&copy_db),
    ];
    ok(&args, 0);
    let page = json_of(&["page", s(&copy_db), to, "--json"], 0);
    assert_eq!(page[0]["page_id"], to.parse::<u64>().unwrap());
    let r = json_of(&["check", s(&copy_db), "--json"], 1);
    assert!(r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == "key_out_of_bounds" && f["page"] == to.parse::<u64>().unwrap()));

    // clear-page: the leaf is empty afterwards.
    let args = ["surgery", "clear-page", s(&db), "--page", to];
    ok(&[&args[..], &["-o", s(&clear_db)]].concat(), 0);
    let page = json_of(&["page", s(&clear_db), to, "--json"], 0);
    assert_eq!(page[0]["count"], 0);

    // clear-page-elements on a leaf keeps the freelist; real bbolt agrees.
    let args = [
        "surgery",
        "clear-page-elements",
        s(&db),
        "--page",
        to,
        "--from-index",
        "1",
        "--to-index",
        "3",
        "-o",
        s(&elems_db),
        "--json",
    ];
    let r = json_of(&args, 0);
    assert_eq!(r["freelist_abandoned"], false);
    bbolt_check(&bin, &elems_db);
    let bad = ["surgery", "clear-page-elements", s(&db), "--page", to];
    let o = untorn(
        &[
            &bad[..],
            &["--from-index", "3", "--to-index", "3", "-o", s(&x_db)],
        ]
        .concat(),
        None,
    );
    assert_eq!(o.status.code(), Some(2));

    // freelist abandon: bbolt still opens and checks it; meta validate shows it.
    ok(
        &["surgery", "freelist", "abandon", s(&db), "-o", s(&ab_db)],
        0,
    );
    bbolt_check(&bin, &ab_db);
    let v = json_of(&["surgery", "meta", "validate", s(&ab_db), "--json"], 0);
    assert!(v["metas"][0]["freelist"].is_null() && v["metas"][1]["freelist"].is_null());

    // meta update: a broken field makes the meta invalid; validate says so (exit 1).
    let args = [
        "surgery",
        "meta",
        "update",
        s(&db),
        "--meta",
        "1",
        "--fields",
        "root:1",
        "-o",
        s(&meta_db),
    ];
    ok(&args, 0);
    let v = json_of(&["surgery", "meta", "validate", s(&meta_db), "--json"], 1);
    assert_eq!(v["metas"][1]["valid"], false);
    assert_eq!(v["metas"][0]["valid"], true);
    assert_eq!(
        untorn(
            &[
                "surgery",
                "meta",
                "update",
                s(&db),
                "--meta",
                "2",
                "--fields",
                "root:3",
                "--in-place"
            ],
            None
        )
        .status
        .code(),
        Some(2)
    );
}
