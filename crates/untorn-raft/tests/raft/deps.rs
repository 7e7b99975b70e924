//! The engine's dependency tree stays free of the consensus stack: only this crate
//! depends on openraft and tokio. Walks `Cargo.lock` from the `untorn` package (the lock
//! file lists every dependency of every package, dev-dependencies included, so the walk
//! over-approximates the engine's tree and can only be stricter than needed).

use std::collections::{BTreeMap, BTreeSet};

/// Package name → names of its dependencies, as `Cargo.lock` records them.
fn lock_graph(lock: &str) -> BTreeMap<String, Vec<String>> {
    let mut graph = BTreeMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let mut name = None;
        let mut deps = Vec::new();
        let mut in_deps = false;
        for line in block.lines() {
            let line = line.trim();
            if let Some(n) = line.strip_prefix("name = ") {
                name = Some(n.trim_matches('"').to_string());
            } else if line.starts_with("dependencies = [") {
                in_deps = true;
            } else if in_deps && line == "]" {
                in_deps = false;
            } else if in_deps {
                // `"name"` or `"name version"`.
                let dep = line.trim_matches(|c| c == '"' || c == ',');
                if let Some(first) = dep.split_whitespace().next() {
                    deps.push(first.to_string());
                }
            }
        }
        if let Some(n) = name {
            graph.entry(n).or_insert_with(Vec::new).extend(deps);
        }
    }
    graph
}

fn reachable(graph: &BTreeMap<String, Vec<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.to_string()];
    while let Some(p) = stack.pop() {
        if !seen.insert(p.clone()) {
            continue;
        }
        for d in graph.get(&p).into_iter().flatten() {
            stack.push(d.clone());
        }
    }
    seen
}

#[test]
fn the_engine_does_not_depend_on_openraft_or_tokio() {
    let lock_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock");
    let lock = std::fs::read_to_string(lock_path).expect("read Cargo.lock");
    let graph = lock_graph(&lock);
    assert!(
        graph.contains_key("untorn"),
        "Cargo.lock has no untorn package"
    );
    // The walk must see this crate's own stack, or it proves nothing.
    let raft = reachable(&graph, "untorn-raft");
    assert!(raft.contains("openraft") && raft.contains("tokio"));
    let engine = reachable(&graph, "untorn");
    for forbidden in ["openraft", "tokio", "untorn-raft"] {
        assert!(
            !engine.contains(forbidden),
            "the engine's dependency tree reaches {forbidden}"
        );
    }
}
