//! Open + read of arbitrary bytes never panics.
//! Input: journal length (u32 little-endian), then the data file, then the journal.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (len, rest) = input.split_at(input.len().min(4));
    let mut jl = [0u8; 4];
    jl[..len.len()].copy_from_slice(len);
    let journal_len = (u32::from_le_bytes(jl) as usize).min(rest.len());
    let (data, journal) = rest.split_at(rest.len() - journal_len);
    let _ = untorn::unstable::fuzzing::open_and_read(data, journal);
});
