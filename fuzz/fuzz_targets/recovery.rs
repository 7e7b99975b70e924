//! Recovery on arbitrary journals beside a valid data file: byte 0 of the input chooses
//! arbitrary journal bytes, edits of the valid journal, edits of another database's
//! journal, or a splice of both (see `untorn::unstable::fuzzing::recovery::journal_for`). Opening —
//! read-only and read-write, strict and with a rollback — never panics, never applies a
//! record of another database, and recovers a committed prefix or returns a typed error.
//!
//! Run: `scripts/fuzz.sh 60 recovery`. The same entry point runs on stable Rust over
//! 1,200 generated inputs in
//! `crates/untorn/tests/engine/mutation.rs::recovery_fuzz_entry_on_arbitrary_and_mutated_journals`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Err(e) = untorn::unstable::fuzzing::recovery::recovery_entry(input) {
        panic!("{e}");
    }
});
