//! bbolt parser, checker, dump and salvage on arbitrary bytes: never panics, and
//! whatever salvage writes checks clean.
//!
//! Run: `cargo +nightly fuzz run bbolt_check` from the workspace root. The same
//! entry point runs on thousands of deterministic mutations of real bbolt files
//! in `crates/untorn-bbolt/tests/bbolt/mutations.rs` on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = untorn_bbolt::fuzzing::run_all(data);
    assert!(out.writer_clean, "salvage wrote a file that does not check clean");
});
