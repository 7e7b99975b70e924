//! Integration tests of untorn-raft: openraft's storage suite, the adapter's own
//! guarantees, and the raft-kv cluster under SIGKILL.

mod adapter;
mod bench;
mod cluster;
mod crash;
mod deps;
mod harness;
mod suite;
