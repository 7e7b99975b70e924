//! Engine integration tests: one test binary, scenario modules.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

mod basic;
mod batch;
mod common;
mod concurrency;
mod copy;
mod edge;
mod examples;
mod golden;
mod live;
mod model;
mod mutation;
mod recovery;
mod salvage;
mod surgery;
mod tidy;
