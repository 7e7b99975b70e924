//! The `examples/` programs run as tests (the README's and the crate docs' examples run
//! as doctests).

#[allow(dead_code)]
mod quickstart {
    include!("../../examples/quickstart.rs");

    pub fn run_at(path: &std::path::Path) -> Vec<String> {
        run(path).unwrap()
    }
}

#[test]
fn quickstart_example_runs_and_reads_back_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.untorn");
    let first = quickstart::run_at(&path);
    assert_eq!(
        first,
        [
            "users: 2 keys",
            "  alice = admin",
            "  bob = reader",
            "  logins/: 1 keys",
            "alice visited 1 time(s)"
        ]
    );
    // A second run opens the same file: one more login and one more visit.
    let second = quickstart::run_at(&path);
    assert_eq!(second[3], "  logins/: 2 keys");
    assert_eq!(second[4], "alice visited 2 time(s)");
}
