//! Integration tests of untorn-etcd against real etcd 3.4 data dirs.
//!
//! One test binary with scenario modules. etcd and etcdctl come from the peers
//! (Debian's etcd-server/etcd-client, installed by scripts/test.sh); missing peers
//! fail the tests under `CI` and print a loud skip otherwise.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::type_complexity
)]

#[path = "etcd/common.rs"]
mod common;
#[path = "etcd/damage.rs"]
mod damage;
#[path = "etcd/read.rs"]
mod read;
#[path = "etcd/wal.rs"]
mod wal;
