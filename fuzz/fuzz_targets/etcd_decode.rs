//! etcd's decoders (revision keys, mvcc KeyValue, leases, auth, members, alarms) on
//! arbitrary bytes: never a panic; what decodes round-trips.
//!
//! Run: `cargo +nightly fuzz run etcd_decode`. The same entry point runs on
//! deterministic mutations on stable (`crates/untorn-etcd/src/format.rs` tests).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    untorn_etcd::fuzzing::run_decoders(data);
});
