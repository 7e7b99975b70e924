//! Test support shared by the integration tests of `untorn-bbolt`, `untorn-etcd` and
//! `untorn-cli`: where the real peers live (`PEERS_BIN`, default
//! `<workspace>/target/peers`), running them with deadlines, and a real etcd process.
//! A missing peer fails the test under `CI` and prints a loud skip otherwise.
//!
//! A dev-dependency only: nothing here reaches a shipped crate.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod etcd;
mod peers;
mod process;

pub use etcd::{b64, have_etcd, parse_get_json, Etcd, Served};
pub use peers::{bboltbench, missing, peers_bin, peers_scripts, run_peer, workspace_root};
pub use process::{free_port, on_path, run_bounded};
