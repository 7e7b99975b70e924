//! The test kit is a dev-dependency only: no crate of the workspace ships it.

use std::path::Path;

/// The sections of a `Cargo.toml` that name `untorn-testkit` as a dependency.
fn sections_naming_the_kit(manifest: &str) -> Vec<String> {
    let mut section = String::new();
    let mut found = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
        } else if line.starts_with("untorn-testkit") && section != "[workspace.dependencies]" {
            found.push(section.clone());
        }
    }
    found
}

#[test]
fn only_dev_dependencies_name_the_test_kit() {
    let root = untorn_testkit::workspace_root();
    let crates = std::fs::read_dir(root.join("crates")).unwrap();
    let mut dev_users = 0;
    for c in crates {
        let manifest = c.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        for section in sections_naming_the_kit(&text) {
            assert_eq!(
                section,
                "[dev-dependencies]",
                "{} names untorn-testkit outside [dev-dependencies]",
                manifest.display()
            );
            dev_users += 1;
        }
    }
    // The walk must have seen the crates that use the kit, or it proves nothing.
    assert!(dev_users >= 3, "{dev_users} crates use the kit");
    assert!(Path::new(&root.join("Cargo.toml")).exists());
}

#[test]
fn a_normal_dependency_on_the_kit_is_seen() {
    let planted = "[package]\nname = \"x\"\n\n[dependencies]\nuntorn-testkit.workspace = true\n";
    assert_eq!(sections_naming_the_kit(planted), vec!["[dependencies]"]);
}
