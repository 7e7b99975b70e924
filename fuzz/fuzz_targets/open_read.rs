//! Open + read of arbitrary bytes never panics. The input is split into a data file and
//! a journal at the first byte's position (so both can be fuzzed).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let split = input.first().map_or(0, |b| (*b as usize * input.len()) / 256);
    let (data, journal) = input.split_at(split.min(input.len()));
    let _ = untorn::fuzzing::open_and_read(data, journal);
});
