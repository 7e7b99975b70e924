//! Integration tests of untorn-bbolt against files written by real bbolt (1.3.6).
//!
//! One test binary with scenario modules (fast links on small machines). The
//! peers (`bboltbench`, `bolt`, etcd, Go with bbolt's source) are found through
//! `PEERS_BIN` (default `<workspace>/target/peers`); when they are missing the
//! tests fail under `CI` and print a loud skip message otherwise.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::type_complexity
)]

#[path = "bbolt/common.rs"]
mod common;
#[path = "bbolt/damage.rs"]
mod damage;
#[path = "bbolt/etcd.rs"]
mod etcd;
#[path = "bbolt/flips.rs"]
mod flips;
#[path = "bbolt/mutations.rs"]
mod mutations;
#[path = "bbolt/read.rs"]
mod read;
#[path = "bbolt/salvage.rs"]
mod salvage;
#[path = "bbolt/surgery.rs"]
mod surgery;
#[path = "bbolt/write.rs"]
mod write;
