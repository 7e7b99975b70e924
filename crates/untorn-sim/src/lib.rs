//! untorn-sim: the deterministic, fault-injecting simulated disk ([`SimDisk`]) that every
//! crash test of untorn runs on, and the torture runner that drives the engine through
//! crashes and faults and checks it against a model.
//!
//! ```
//! use untorn::Storage;
//! use untorn_sim::{FaultConfig, SimDisk};
//!
//! let disk = SimDisk::new(FaultConfig { seed: 1, ..FaultConfig::default() });
//! let f = disk.file("data");
//! f.sync_directory_entry().unwrap(); // a new file survives a crash only after this
//! f.write_at(0, b"durable").unwrap();
//! f.sync().unwrap();
//! f.write_at(0, b"volatile").unwrap();
//! disk.crash();
//! assert!(f.sync().is_err()); // handles from before the crash are dead
//! let bytes = disk.durable_bytes("data");
//! assert!(bytes.starts_with(b"durable") || bytes.starts_with(b"volatile"));
//! ```
//!
//! # Running
//!
//! - CI: `cargo test -p untorn-sim` (unit tests of the simulator, then the one
//!   integration-test binary `tests/torture.rs`: strict and data-destroying fault
//!   classes, reader threads, determinism, exhaustive small workloads, crashes during
//!   creation, at-rest damage, and a real process SIGKILLed on a real file).
//! - By hand: `cargo run -p untorn-sim --bin untorn-torture -- --seeds 1000 --faults all`;
//!   `--exhaustive` for the enumeration mode. A failing seed prints one command that
//!   reproduces it; `UNTORN_SIM_LOG=1` prints every disk operation and crash plan.
//!
//! Modules: [`disk`] (the simulated disk and its fault table), [`config`] (what a run
//! injects and how the engine is opened), [`oracle`] (the assertions that judge the engine against the model), [`summary`]
//! (what a run reports), [`torture`] (the randomized run loop), [`exhaustive`],
//! [`at_rest`], [`group_commit`], [`kill`] (the real-process kill test's child and
//! checks). The PRNG and the reference model are `untorn::unstable::fuzzing`'s, shared with the
//! engine's mutation and model tests.
//!
//! This crate is *not* a general-purpose filesystem simulator: it models exactly what the
//! storage seam can observe (sector-granular persistence of unsynced writes, lying and
//! misdirected writes, at-rest damage, EIO and ENOSPC).

pub mod at_rest;
pub mod config;
pub mod disk;
pub mod exhaustive;
pub mod group_commit;
pub mod kill;
pub mod oracle;
pub mod summary;
pub mod torture;

pub use disk::{
    CrashPlan, Damage, DiskStats, FaultConfig, PendingInfo, SimDisk, SimFile, SECTOR_SIZE_BYTES,
};
/// The workspace's one test PRNG, which every random decision of a run draws from.
pub use untorn::unstable::fuzzing::Rng;
