//! Fault-injecting storage (in progress).
