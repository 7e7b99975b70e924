//! untorn's benchmark harness: redb's benchmark phases on untorn and its peers (redb,
//! LMDB via heed, fjall, SQLite, RocksDB, bbolt via a Go driver), durable commit latency
//! against raw `fdatasync`, and `check` throughput against a sequential read. It writes
//! `BENCHMARKS.md` and an SVG chart.
//!
//! What it is *not*: a unit-test suite (the CI smoke test checks the output is
//! well-formed and every read found its key, never a timing), and not a dependency of the
//! engine — every peer is an optional cargo feature of this crate only.
//!
//! Layout: [`data`] generates the shared data set, [`engine`] is the interface each
//! engine implements (`engines::*`), [`workload`] runs the phases in a child process,
//! [`harness`] starts the children with rotated order, [`report`] and [`svg`] render.

pub mod check_speed;
pub mod child;
pub mod data;
pub mod engine;
pub mod engines;
pub mod harness;
pub mod latency;
pub mod machine;
pub mod report;
pub mod svg;
pub mod workload;
