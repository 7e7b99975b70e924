//! untorn-sim integration tests: one test binary, one module per scenario.
