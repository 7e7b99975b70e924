//! Tidy: the workspace's structural rules, checked by reading its source (the way
//! rust-analyzer's `tidy.rs` does). Every rule is a function from (path, text) to
//! violations, run over the tree by one test and, by a second test, over a string that
//! breaks it, so that a rule that stopped finding anything would fail loudly.
//!
//! The rules (ARCHITECTURE.md names the invariant each one keeps):
//!
//! 1. **Byte offsets only in `format`.** No `from_le_bytes`, `to_le_bytes` or their
//!    big-/native-endian kin in the non-test source of the crates that read database
//!    files (`untorn`, `untorn-bbolt`, `untorn-etcd`, `untorn-cli`), except in their
//!    format modules: `crates/untorn/src/format/`, `crates/untorn-bbolt/src/format.rs`
//!    and `crates/untorn-etcd/src/format/` (a crate that reads a file format gets one
//!    entry here, in `FORMAT_MODULES`, and its source directory in `FILE_READERS`). Comments,
//!    `#[cfg(test)]` modules and test-only files are not scanned; the simulator, the
//!    benchmarks and the tests build keys and values from integers and are out of scope.
//!    Likewise only `storage.rs`, `db.rs`, `files.rs` and `readers.rs` (the OS locks, the
//!    two storages, the files beside the database) of the
//!    engine name `std::fs`: every other byte goes through the `Storage` trait.
//! 2. **bbolt's magic only in `untorn-bbolt`.** No other file of the workspace (source,
//!    tests, examples, fuzz targets) spells bbolt's meta magic number.
//! 3. **No upward imports.** Each crate's modules are ranked in layers (the tables
//!    below, drawn in ARCHITECTURE.md); a module names (`crate::x`) only modules of
//!    lower layers. The crate root counts as the top layer. Inside a module directory,
//!    the submodules' `super::` imports form no circle.
//! 4. **Workspace lints.** Every workspace member opts into `[workspace.lints]`, which
//!    forbids `unsafe_code`.
//! 5. **Invariants name their tests.** Every `**Invariant:**` line of ARCHITECTURE.md
//!    names a test (`` `test: name` ``) that exists.
//! 6. **Rooms of one noun.** No engine source file (`crates/untorn/src`) holds more than
//!    [`LONG_FILE_LINES`] lines of non-test code (blank and comment lines not counted)
//!    unless a `//! Why this file is long:` line in its header says why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer tables: per crate source directory, its modules from the lowest layer up.
/// A module may name modules of strictly lower layers only.
const LAYERS: &[(&str, &[&[&str]])] = &[
    (
        "crates/untorn/src",
        &[
            &["words"],
            &["error"],
            &["limits", "storage", "report", "freeset"],
            &["format"],
            &["pager", "journal", "superblock", "entropy", "readers"],
            &["recovery", "btree", "check"],
            &["commit"],
            &["core"],
            &["value"],
            &["cursor"],
            &["range"],
            &["bucket"],
            &["copy"],
            &["tx"],
            &["files"],
            &["db", "typed"],
            &["salvage", "surgery", "fuzzing"],
            &["unstable"],
        ],
    ),
    (
        "crates/untorn-bbolt/src",
        &[
            &["format"],
            &["error"],
            &["file"],
            &["check"],
            &["tree", "writer", "inspect"],
            &["salvage", "surgery"],
            &["fuzzing"],
        ],
    ),
    (
        "crates/untorn-etcd/src",
        &[
            &["format"],
            &["error", "schema"],
            &["db", "wal"],
            &["backend", "replay"],
            &["check"],
            &["salvage"],
            &["fuzzing"],
        ],
    ),
    (
        "crates/untorn-sim/src",
        &[
            &["disk"],
            &["config", "oracle", "summary"],
            &["exhaustive", "at_rest", "group_commit", "kill"],
            &["torture"],
        ],
    ),
    (
        "crates/untorn-cli/src",
        &[
            &["args", "encoding", "backend"],
            &["output", "map"],
            &["cmd"],
        ],
    ),
];

/// The files allowed to decode and encode integers from bytes (rule 1).
const FORMAT_MODULES: &[&str] = &[
    "crates/untorn/src/format/",
    // User-level key and value codecs (big-endian integers that sort), not file format.
    "crates/untorn/src/typed.rs",
    "crates/untorn-bbolt/src/format.rs",
    "crates/untorn-etcd/src/format/",
];

/// The source directories rule 1 scans.
const FILE_READERS: &[&str] = &[
    "crates/untorn/src",
    "crates/untorn-bbolt/src",
    "crates/untorn-etcd/src",
    "crates/untorn-cli/src",
];

/// The engine's files allowed to name `std::fs` (rule 1).
const FILE_OPENERS: &[&str] = &[
    "crates/untorn/src/storage.rs",
    "crates/untorn/src/db.rs",
    // The database's files by path: the lock, the journal copy, images, salvage's sources.
    "crates/untorn/src/files.rs",
    // The reader table and its slot lock files: OS locks beside the database, not pages.
    "crates/untorn/src/readers.rs",
];

const BYTE_CONVERSIONS: &[&str] = &[
    "from_le_bytes",
    "from_be_bytes",
    "from_ne_bytes",
    "to_le_bytes",
    "to_be_bytes",
    "to_ne_bytes",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("crates/untorn sits two levels below the workspace root")
        .to_path_buf()
}

/// Every `.rs` file under `dir`, as (path relative to the workspace root, text).
fn rust_files(dir: &Path) -> Vec<(String, String)> {
    let root = workspace_root();
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "target") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The lines of non-test code: comment lines dropped, a `#[cfg(test)]` module
/// declaration (`mod x;`) skipped, and the text from a `#[cfg(test)]` inline module on
/// (the convention: unit tests close the file).
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        if line.trim() == "#[cfg(test)]" {
            let next = lines.get(i + 1).map_or("", |l| l.trim());
            if next.starts_with("mod ") && next.ends_with(';') {
                i += 2;
                continue;
            }
            break;
        }
        if !line.trim_start().starts_with("//") {
            out.push((i + 1, *line));
        }
        i += 1;
    }
    out
}

/// Files of `dir` that are test-only modules (declared under `#[cfg(test)]` by their
/// parent), relative to the workspace root.
fn test_only_files(files: &[(String, String)]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, text) in files {
        let dir = match path.rsplit_once('/') {
            Some((d, f)) if f == "mod.rs" || f == "lib.rs" || f == "main.rs" => d.to_owned(),
            Some((d, f)) => format!("{d}/{}", f.trim_end_matches(".rs")),
            None => continue,
        };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for w in lines.windows(2) {
            if let [attr, decl] = w {
                if *attr == "#[cfg(test)]" {
                    if let Some(name) = decl.strip_prefix("mod ").and_then(|r| r.strip_suffix(';'))
                    {
                        out.insert(format!("{dir}/{name}.rs"));
                        out.insert(format!("{dir}/{name}/mod.rs"));
                    }
                }
            }
        }
    }
    out
}

// ---- rule 1 -------------------------------------------------------------------------

fn byte_conversions(path: &str, text: &str) -> Vec<String> {
    if FORMAT_MODULES.iter().any(|m| path.starts_with(m)) {
        return Vec::new();
    }
    code_lines(text)
        .into_iter()
        .filter_map(|(n, line)| {
            let hit = BYTE_CONVERSIONS.iter().find(|c| line.contains(*c))?;
            Some(format!(
                "{path}:{n}: `{hit}` outside the format modules: decode and encode fields in \
                 crates/untorn/src/format/, crates/untorn-bbolt/src/format.rs or \
                 crates/untorn-etcd/src/format/"
            ))
        })
        .collect()
}

fn file_access(path: &str, text: &str) -> Vec<String> {
    if !path.starts_with("crates/untorn/src/") || FILE_OPENERS.contains(&path) {
        return Vec::new();
    }
    code_lines(text)
        .into_iter()
        .filter(|(_, l)| l.contains("std::fs"))
        .map(|(n, _)| {
            format!("{path}:{n}: `std::fs` outside storage.rs, db.rs and readers.rs: do I/O through `Storage`")
        })
        .collect()
}

// ---- rule 6 -------------------------------------------------------------------------

/// Lines of non-test code an engine file may hold without saying why.
const LONG_FILE_LINES: usize = 600;

fn long_file(path: &str, text: &str) -> Vec<String> {
    if !path.starts_with("crates/untorn/src/") {
        return Vec::new();
    }
    let n = code_lines(text)
        .iter()
        .filter(|(_, l)| !l.trim().is_empty())
        .count();
    let says_why = text
        .lines()
        .take_while(|l| l.starts_with("//!") || l.trim().is_empty())
        .any(|l| l.starts_with("//! Why this file is long:"));
    if n > LONG_FILE_LINES && !says_why {
        vec![format!(
            "{path}: {n} lines of code (more than {LONG_FILE_LINES}): split it by noun, or \
             say why in a `//! Why this file is long:` header line"
        )]
    } else {
        Vec::new()
    }
}

// ---- rule 2 -------------------------------------------------------------------------

fn bbolt_magic(path: &str, text: &str) -> Vec<String> {
    if path.starts_with("crates/untorn-bbolt/") {
        return Vec::new();
    }
    // Assembled, so that this file does not spell it.
    let magic = ["ED0C", "DAED"].concat();
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.replace('_', "").to_ascii_uppercase().contains(&magic))
        .map(|(i, _)| {
            format!(
                "{path}:{}: bbolt's magic outside the untorn-bbolt crate: ask \
                 untorn_bbolt::recognise",
                i + 1
            )
        })
        .collect()
}

// ---- rule 3 -------------------------------------------------------------------------

/// The top-level module a file of a crate's source directory belongs to (`None` for the
/// crate root).
fn module_of(src_dir: &str, path: &str) -> Option<String> {
    let rel = path.strip_prefix(src_dir)?.trim_start_matches('/');
    let first = rel.split('/').next()?;
    let name = first.trim_end_matches(".rs");
    match name {
        "lib" | "main" | "bin" => None,
        _ => Some(name.to_owned()),
    }
}

/// Names a file takes from its crate: every `crate::x` in code, and every `x` in a
/// `use crate::{x, ...}` group.
fn crate_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let code: String = code_lines(text)
        .into_iter()
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            let mut depth = 0usize;
            let mut item = String::new();
            for c in group[..end].chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth = depth.saturating_sub(1),
                    ',' if depth == 0 => {
                        push_head(&mut out, &item);
                        item.clear();
                    }
                    c => item.push(c),
                }
            }
            push_head(&mut out, &item);
        } else {
            push_head(&mut out, rest);
        }
    }
    out
}

fn push_head(out: &mut BTreeSet<String>, path: &str) {
    let head: String = path
        .trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if !head.is_empty() && head != "self" {
        out.insert(head);
    }
}

/// The names a crate root re-exports (`pub use module::{A, B}`) mapped to their module;
/// other names defined at the root map to `None` (the root itself).
fn root_names(root_text: &str) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    let code: String = code_lines(root_text)
        .into_iter()
        .map(|(_, l)| format!("{} ", l.trim()))
        .collect();
    for item in code.split(';') {
        let Some(rest) = item.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        let names = names.trim().trim_matches(|c| c == '{' || c == '}');
        for n in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let n = n.rsplit(" as ").next().unwrap_or(n).trim();
            let n = n.rsplit("::").next().unwrap_or(n);
            out.insert(n.to_owned(), Some(module.to_owned()));
        }
    }
    out
}

/// Upward imports among the modules of one crate source directory.
fn upward_imports(
    src_dir: &str,
    layers: &[&[&str]],
    files: &[(String, String)],
    root_text: &str,
) -> Vec<String> {
    let rank: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().map(move |m| (*m, i)))
        .collect();
    let top = layers.len();
    let roots = root_names(root_text);
    let tests = test_only_files(files);
    let mut out = Vec::new();
    for (path, text) in files {
        if tests.contains(path) {
            continue;
        }
        let Some(module) = module_of(src_dir, path) else {
            continue;
        };
        let Some(&from) = rank.get(module.as_str()) else {
            out.push(format!(
                "{path}: module `{module}` is in no layer of the tidy table (add it to LAYERS and to ARCHITECTURE.md)"
            ));
            continue;
        };
        for name in crate_names(text) {
            let target = match (rank.get(name.as_str()), roots.get(&name)) {
                (Some(_), _) => Some(name.clone()),
                (None, Some(m)) => m.clone(),
                // A name the crate root itself defines.
                (None, None) => None,
            };
            let to = target
                .as_deref()
                .and_then(|t| rank.get(t).copied())
                .unwrap_or(top);
            if target.as_deref() == Some(module.as_str()) {
                continue;
            }
            if to >= from && !(to == top && from + 1 == top) {
                out.push(format!(
                    "{path}: `{module}` (layer {from}) names `{}` (layer {to}): imports go down the layers only",
                    target.as_deref().unwrap_or("the crate root")
                ));
            }
        }
    }
    out
}

/// Circles among the submodules of one module directory (`use super::x`).
fn sibling_circles(files: &[(String, String)]) -> Vec<String> {
    let mut dirs: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (path, text) in files {
        let Some((dir, file)) = path.rsplit_once('/') else {
            continue;
        };
        let name = file.trim_end_matches(".rs");
        if matches!(name, "mod" | "lib" | "main") {
            continue;
        }
        let deps: BTreeSet<String> = code_lines(text)
            .into_iter()
            .filter_map(|(_, l)| l.trim().strip_prefix("use super::"))
            .filter_map(|r| {
                let head: String = r
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                (!head.is_empty() && head != name).then_some(head)
            })
            .collect();
        dirs.entry(dir.to_owned())
            .or_default()
            .insert(name.to_owned(), deps);
    }
    let mut out = Vec::new();
    for (dir, graph) in dirs {
        if let Some(circle) = find_circle(&graph) {
            out.push(format!(
                "{dir}: submodules import each other in a circle: {}",
                circle.join(" -> ")
            ));
        }
    }
    out
}

/// A circle in `graph`, if there is one (iterative depth-first search).
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    let mut state: BTreeMap<&str, u8> = BTreeMap::new(); // 1 on the path, 2 done
    for start in graph.keys() {
        if state.contains_key(start.as_str()) {
            continue;
        }
        let mut path: Vec<(&str, Vec<&str>)> = Vec::new();
        let next = |n: &str| -> Vec<&str> {
            graph
                .get(n)
                .map(|d| {
                    d.iter()
                        .map(String::as_str)
                        .filter(|d| graph.contains_key(*d))
                        .collect()
                })
                .unwrap_or_default()
        };
        state.insert(start, 1);
        path.push((start, next(start)));
        while let Some((node, pending)) = path.last_mut() {
            match pending.pop() {
                Some(d) => match state.get(d) {
                    Some(1) => {
                        let i = path.iter().position(|(n, _)| *n == d).unwrap_or(0);
                        let mut circle: Vec<String> =
                            path[i..].iter().map(|(n, _)| (*n).to_owned()).collect();
                        circle.push(d.to_owned());
                        return Some(circle);
                    }
                    Some(_) => {}
                    None => {
                        state.insert(d, 1);
                        path.push((d, next(d)));
                    }
                },
                None => {
                    state.insert(node, 2);
                    path.pop();
                }
            }
        }
    }
    None
}

// ---- rule 4 -------------------------------------------------------------------------

fn workspace_members(root_manifest: &str) -> Vec<String> {
    let Some(start) = root_manifest.find("members") else {
        return Vec::new();
    };
    let list = &root_manifest[start..];
    let end = list.find(']').unwrap_or(list.len());
    list[..end]
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn lint_opt_in(path: &str, manifest: &str) -> Vec<String> {
    let mut in_lints = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_lints = line == "[lints]";
        } else if in_lints && line.replace(' ', "") == "workspace=true" {
            return Vec::new();
        }
    }
    vec![format!(
        "{path}: the crate does not opt into the workspace lints: add `[lints]\\nworkspace = true`"
    )]
}

fn workspace_forbids_unsafe(root_manifest: &str) -> Vec<String> {
    let mut in_rust_lints = false;
    for line in root_manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_rust_lints = line == "[workspace.lints.rust]";
        } else if in_rust_lints && line.replace(' ', "") == "unsafe_code=\"forbid\"" {
            return Vec::new();
        }
    }
    vec!["Cargo.toml: [workspace.lints.rust] must set unsafe_code = \"forbid\"".to_owned()]
}

// ---- rule 5 -------------------------------------------------------------------------

fn invariants_name_tests(architecture: &str, test_names: &BTreeSet<String>) -> Vec<String> {
    let lines: Vec<&str> = architecture.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(start) = line.find("**Invariant:**") else {
            continue;
        };
        // The invariant runs on until a blank line, a heading, a list item or the next
        // bold lead-in.
        let mut text = line[start..].to_owned();
        for next in lines.iter().skip(i + 1).map(|l| l.trim()) {
            if next.is_empty() || next.starts_with(['#', '-', '*']) || next.starts_with("```") {
                break;
            }
            text.push(' ');
            text.push_str(next);
        }
        let named = text
            .split("`test: ")
            .nth(1)
            .and_then(|r| r.split('`').next())
            .map(str::trim);
        match named {
            None => out.push(format!(
                "ARCHITECTURE.md:{}: an Invariant names no test (`test: name`)",
                i + 1
            )),
            Some(t) if !test_names.contains(t) => out.push(format!(
                "ARCHITECTURE.md:{}: the Invariant names test `{t}`, which does not exist",
                i + 1
            )),
            Some(_) => {}
        }
    }
    out
}

/// Names of every `fn` following a `#[test]` attribute (or inside a `proptest!`) in the
/// workspace.
fn test_names(files: &[(String, String)]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, text) in files {
        let mut armed = false;
        for line in text.lines().map(str::trim) {
            if line == "#[test]" {
                armed = true;
                continue;
            }
            if armed {
                if let Some(rest) = line.strip_prefix("fn ") {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    out.insert(name);
                    armed = false;
                }
            }
        }
    }
    out
}

// ---- the tests ------------------------------------------------------------------------

fn report(what: &str, violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "tidy: {what}:\n  {}",
        violations.join("\n  ")
    );
}

#[test]
fn tidy_workspace_keeps_its_structural_rules() {
    let root = workspace_root();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();

    let mut byte_violations = Vec::new();
    let mut long_files = Vec::new();
    for dir in FILE_READERS {
        let files = rust_files(&root.join(dir));
        let tests = test_only_files(&files);
        for (path, text) in files.iter().filter(|(p, _)| !tests.contains(p)) {
            byte_violations.extend(byte_conversions(path, text));
            byte_violations.extend(file_access(path, text));
            long_files.extend(long_file(path, text));
        }
    }
    report("engine files too long without a reason", long_files);
    report(
        "byte offsets outside the format modules, files outside the storage",
        byte_violations,
    );

    let mut magic = Vec::new();
    for dir in ["crates", "fuzz"] {
        for (path, text) in rust_files(&root.join(dir)) {
            magic.extend(bbolt_magic(&path, &text));
        }
    }
    report("bbolt's magic outside untorn-bbolt", magic);

    let mut layers = Vec::new();
    for (dir, table) in LAYERS {
        let files = rust_files(&root.join(dir));
        let root_file = if root.join(dir).join("lib.rs").exists() {
            "lib.rs"
        } else {
            "main.rs"
        };
        let root_text = read(&format!("{dir}/{root_file}"));
        layers.extend(upward_imports(dir, table, &files, &root_text));
        layers.extend(sibling_circles(&files));
    }
    report("imports against the layer tables", layers);

    let manifest = read("Cargo.toml");
    let mut lints = workspace_forbids_unsafe(&manifest);
    for member in workspace_members(&manifest) {
        let path = format!("{member}/Cargo.toml");
        lints.extend(lint_opt_in(&path, &read(&path)));
    }
    report("workspace lints", lints);

    let all = rust_files(&root.join("crates"));
    report(
        "ARCHITECTURE.md invariants",
        invariants_name_tests(&read("ARCHITECTURE.md"), &test_names(&all)),
    );
}

/// Each rule finds the violation planted in a small input: a rule that silently stopped
/// matching would otherwise keep the tree "clean".
#[test]
fn tidy_rules_catch_planted_violations() {
    let decode = "fn f(b: [u8; 4]) -> u32 {\n    u32::from_le_bytes(b)\n}\n";
    assert_eq!(
        byte_conversions("crates/untorn/src/pager.rs", decode).len(),
        1
    );
    assert!(byte_conversions("crates/untorn/src/format/page.rs", decode).is_empty());
    assert!(byte_conversions("crates/untorn-etcd/src/format/mvcc.rs", decode).is_empty());
    assert_eq!(
        byte_conversions("crates/untorn-etcd/src/salvage.rs", decode).len(),
        1
    );
    assert!(
        byte_conversions("crates/untorn/src/pager.rs", "// u32::from_le_bytes(b)\n").is_empty()
    );
    let in_tests = "fn f() {}\n#[cfg(test)]\nmod tests { fn g() { 1u32.to_le_bytes(); } }\n";
    assert!(byte_conversions("crates/untorn/src/pager.rs", in_tests).is_empty());

    let open = "fn f() { std::fs::File::open(\"x\"); }\n";
    assert_eq!(file_access("crates/untorn/src/pager.rs", open).len(), 1);
    assert!(file_access("crates/untorn/src/db.rs", open).is_empty());

    let long: String = "fn f() {}\n".repeat(LONG_FILE_LINES + 1);
    assert_eq!(long_file("crates/untorn/src/pager.rs", &long).len(), 1);
    let explained = format!("//! Pages.\n//! Why this file is long: one table.\n\n{long}");
    assert!(long_file("crates/untorn/src/pager.rs", &explained).is_empty());
    let tested = format!("fn f() {{}}\n#[cfg(test)]\nmod tests {{\n{long}}}\n");
    assert!(long_file("crates/untorn/src/pager.rs", &tested).is_empty());

    let magic = format!("const M: u32 = 0x{}_{};\n", "ED0C", "DAED");
    assert_eq!(bbolt_magic("crates/untorn/src/db.rs", &magic).len(), 1);
    assert!(bbolt_magic("crates/untorn-bbolt/src/format.rs", &magic).is_empty());

    let table: &[&[&str]] = &[&["format"], &["pager"], &["db"]];
    let files = vec![
        (
            "crates/x/src/format/page.rs".to_owned(),
            "use crate::pager::Pager;\n".to_owned(),
        ),
        (
            "crates/x/src/db.rs".to_owned(),
            "use crate::{format::Meta, pager};\nfn f() { crate::Database::open(); }\n".to_owned(),
        ),
        ("crates/x/src/stray.rs".to_owned(), String::new()),
    ];
    let root = "pub use db::Database;\n";
    let found = upward_imports("crates/x/src", table, &files, root);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].contains("`format` (layer 0) names `pager` (layer 1)"));
    assert!(found[1].contains("module `stray` is in no layer"));

    let circle = vec![
        (
            "crates/x/src/btree/read.rs".to_owned(),
            "use super::mutate::State;\n".to_owned(),
        ),
        (
            "crates/x/src/btree/mutate.rs".to_owned(),
            "use super::read::lookup;\n".to_owned(),
        ),
    ];
    assert_eq!(sibling_circles(&circle).len(), 1);

    assert_eq!(
        lint_opt_in("a/Cargo.toml", "[package]\nname = \"a\"\n").len(),
        1
    );
    assert!(lint_opt_in("a/Cargo.toml", "[lints]\nworkspace = true\n").is_empty());
    assert_eq!(
        workspace_forbids_unsafe("[workspace.lints.rust]\n").len(),
        1
    );
    assert_eq!(
        workspace_members("[workspace]\nmembers = [\n  \"crates/a\",\n  \"crates/b\",\n]\n"),
        ["crates/a", "crates/b"]
    );

    let names: BTreeSet<String> = ["kept".to_owned()].into();
    let arch =
        "**Invariant:** a (`test: kept`).\n**Invariant:** b (`test: gone`).\n**Invariant:** c.\n";
    assert_eq!(invariants_name_tests(arch, &names).len(), 2);
    let src = "#[test]\nfn kept() {}\nfn helper() {}\n";
    assert_eq!(test_names(&[("t.rs".to_owned(), src.to_owned())]), names);
}
