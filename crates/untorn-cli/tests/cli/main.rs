//! The `untorn` binary end to end: one test binary, one module per scenario.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod bbolt;
mod common;
mod damaged;
mod dump_load;
mod exit_codes;
mod help_examples;
mod json;
mod map;
mod mutated;
mod recovery;
// The peers are found and run as untorn-bbolt's tests do: one file, both binaries.
#[path = "../../../untorn-bbolt/tests/bbolt/peers.rs"]
mod peers;
mod salvage;
mod usability;
