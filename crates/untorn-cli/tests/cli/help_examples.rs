//! Every example in every `--help` runs as printed, in a directory holding the files the
//! examples name: `app.untorn` (users: alice, bob; users/logins: 0x…01), `app.jsonl`
//! (its dump), the bbolt file `db`, and an etcd backend `member/snap/db` with its snapshot
//! `snapshot.db` (a SHA-256 trailer). Each command's examples run in
//! a fresh copy of that directory, in order, through `sh` (pipes and redirections as
//! written); each must exit 0.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::common::{ok, untorn};

/// The bbolt file of the examples: bucket "keys" with 3000 keys, written by
/// `untorn_bbolt::write_file` (deterministic: the surgery examples' page numbers are
/// pages of this file).
pub fn bbolt_example(path: &Path) {
    let mut root = untorn_bbolt::BucketData::default();
    let b = root.bucket_mut(&[b"keys".to_vec()]).unwrap();
    let mut entries = BTreeMap::new();
    for i in 0..3000u32 {
        entries.insert(
            format!("key{i:06}").into_bytes(),
            untorn_bbolt::Value::Data(vec![(i % 251) as u8; 60]),
        );
    }
    b.entries = entries;
    untorn_bbolt::write_file(path, &root, &untorn_bbolt::WriteOptions::default()).unwrap();
}

fn fixture(dir: &Path) {
    let app = dir.join("app.untorn");
    let lines = concat!(
        "{\"bucket\":[\"users\"],\"key\":\"alice\",\"value\":\"admin\"}\n",
        "{\"bucket\":[\"users\"],\"key\":\"bob\",\"value\":\"reader\"}\n",
        "{\"bucket\":[\"users\",\"logins\"],\"key\":{\"hex\":\"0000000000000001\"},\"value\":\"2026-11-21\"}\n",
    );
    let o = untorn(&["load", app.to_str().unwrap()], Some(lines.as_bytes()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(
        dir.join("app.jsonl"),
        ok(&["dump", app.to_str().unwrap()], 0),
    )
    .unwrap();
    bbolt_example(&dir.join("db"));
    std::fs::create_dir_all(dir.join("member/snap")).unwrap();
    etcd_example(&dir.join("member/snap/db"));
    std::fs::copy(dir.join("member/snap/db"), dir.join("snapshot.db")).unwrap();
    untorn_bbolt::file::append_snapshot_trailer(&dir.join("snapshot.db")).unwrap();
}

/// An etcd 3.4 backend as etcd lays it out (buckets `key` and `meta`): revisions 2..=150,
/// each a put of one of ten pods `/registry/pods/ns-1/p…`.
fn etcd_example(path: &Path) {
    use untorn_etcd::format::encode_key_value;
    use untorn_etcd::{KeyValue, Revision};
    let mut root = untorn_bbolt::BucketData::default();
    let mut created: BTreeMap<Vec<u8>, (i64, i64)> = BTreeMap::new();
    let mut revisions = BTreeMap::new();
    for main in 2..=150i64 {
        let name = if main % 10 == 0 {
            "p".to_owned()
        } else {
            format!("p{}", main % 10)
        };
        let key = format!("/registry/pods/ns-1/{name}").into_bytes();
        let (create, version) = created.entry(key.clone()).or_insert((main, 0));
        *version += 1;
        let kv = KeyValue {
            key,
            create_revision: *create,
            mod_revision: main,
            version: *version,
            value: format!("pod spec at revision {main}").into_bytes(),
            lease: 0,
        };
        revisions.insert(
            Revision::new(main, 0).to_key(false),
            untorn_bbolt::Value::Data(encode_key_value(&kv)),
        );
    }
    root.bucket_mut(&[b"key".to_vec()]).unwrap().entries = revisions;
    let meta = root.bucket_mut(&[b"meta".to_vec()]).unwrap();
    meta.entries.insert(
        b"consistent_index".to_vec(),
        untorn_bbolt::Value::Data(160u64.to_be_bytes().to_vec()),
    );
    untorn_bbolt::write_file(path, &root, &untorn_bbolt::WriteOptions::default()).unwrap();
}

/// The subcommands listed under "Commands:" in a help text.
fn subcommands(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            inside = true;
            continue;
        }
        if inside {
            if !line.starts_with("  ") {
                break;
            }
            let name = line.split_whitespace().next().unwrap_or("");
            if !name.is_empty() && name != "help" {
                out.push(name.to_owned());
            }
        }
    }
    out
}

/// The example command lines of a help text.
fn examples(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line.starts_with("Example") {
            inside = true;
            continue;
        }
        if inside {
            match line.strip_prefix("  ") {
                Some(cmd) if cmd.starts_with("untorn") => out.push(cmd.to_owned()),
                _ => inside = false,
            }
        }
    }
    out
}

/// Every command path (`[]`, `["surgery"]`, `["surgery", "meta", "update"]`, ...).
fn command_paths() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = ok(&args, 0);
        for sub in subcommands(&help) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
        out.push(path);
    }
    out.sort();
    out
}

#[test]
fn every_help_example_runs_as_printed() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_untorn"))
        .parent()
        .unwrap()
        .to_owned();
    let path_var = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for path in command_paths() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = ok(&args, 0);
        let cmds = examples(&help);
        assert!(
            !cmds.is_empty(),
            "`untorn {}` --help has no example",
            path.join(" ")
        );
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path());
        for cmd in cmds {
            let o = Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .current_dir(dir.path())
                .env("PATH", &path_var)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "`untorn {}` example failed ({:?}): {cmd}\nstdout: {}\nstderr: {}",
                path.join(" "),
                o.status.code(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 40, "only {ran} examples ran");
}

#[test]
fn the_bbolt_example_file_has_the_pages_the_surgery_examples_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    bbolt_example(&db);
    let pages: serde_json::Value =
        serde_json::from_str(&ok(&["pages", db.to_str().unwrap(), "--json"], 0)).unwrap();
    let kind = |id: u64| pages[id as usize]["type"].as_str().unwrap().to_owned();
    // copy-page 12 -> 40, clear-page 40: leaves; clear-page-elements 73 [28, 29): the
    // bucket's branch (the one that closes a cycle in the incident is a branch too).
    assert_eq!(kind(12), "leaf");
    assert_eq!(kind(40), "leaf");
    assert_eq!(kind(73), "branch");
    assert!(pages[73]["items"].as_u64().unwrap() > 29);
}
