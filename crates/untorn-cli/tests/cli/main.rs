//! The `untorn` binary end to end: one test binary, one module per scenario.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod bbolt;
mod common;
mod copy;
mod damaged;
mod dump_load;
mod etcd;
// A real etcd 3.4 (free ports on 127.0.0.1, deadlines, the child always killed) and its
// fixture data dir, as untorn-etcd's tests run them: one file, both binaries.
#[path = "../../../untorn-etcd/tests/etcd/common.rs"]
mod etcd_peer;
mod exit_codes;
mod help_examples;
mod json;
mod live;
mod map;
mod mutated;
mod recovery;
mod salvage;
mod surgery;
mod usability;
