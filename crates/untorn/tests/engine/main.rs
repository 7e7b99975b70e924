//! Engine integration tests: one test binary, scenario modules.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]

mod basic;
mod common;
