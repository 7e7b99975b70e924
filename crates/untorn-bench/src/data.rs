//! The data set: key and value number `i` are a pure function of (seed, i), so every
//! engine — in its own process, and the Go bbolt driver too — sees the same bytes, and a
//! phase can regenerate any key without storing a million of them.
//!
//! The generator is SplitMix64 (public domain, Vigna): a 64-bit counter stepped by the
//! golden-ratio constant and mixed by two multiply-xorshift rounds. The Go driver in
//! `bbolt/main.go` implements the same function; `tests::known_answer` pins it.

/// Golden-ratio increment of SplitMix64.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
/// Separates the value stream of item `i` from its key stream.
const VALUE_STREAM: u64 = 0xD1B5_4A32_D192_ED03;

/// One SplitMix64 output for `state`, after stepping it.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GAMMA);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fill(mut state: u64, out: &mut [u8]) {
    for chunk in out.chunks_mut(8) {
        let word = splitmix64(&mut state).to_le_bytes();
        let n = chunk.len();
        chunk.copy_from_slice(word.get(..n).unwrap_or(&[]));
    }
}

/// The shape of the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataSet {
    pub seed: u64,
    pub key_size_bytes: usize,
    pub value_size_bytes: usize,
}

impl DataSet {
    fn key_state(&self, i: u64) -> u64 {
        self.seed ^ i.wrapping_mul(GAMMA).rotate_left(17)
    }

    /// Writes key `i` into `buf` (resized to the key size).
    pub fn key(&self, i: u64, buf: &mut Vec<u8>) {
        buf.resize(self.key_size_bytes, 0);
        fill(self.key_state(i), buf);
    }

    /// Writes value `i` into `buf` (resized to the value size).
    pub fn value(&self, i: u64, buf: &mut Vec<u8>) {
        buf.resize(self.value_size_bytes, 0);
        fill(self.key_state(i) ^ VALUE_STREAM, buf);
    }

    /// [`digest`] of value `i`, without generating the whole value.
    pub fn value_digest(&self, i: u64) -> u64 {
        let mut state = self.key_state(i) ^ VALUE_STREAM;
        let first = splitmix64(&mut state).to_le_bytes()[0];
        if self.value_size_bytes == 0 {
            return 0;
        }
        digest_parts(self.value_size_bytes, first)
    }
}

/// What a read returns to the harness: the value's length and first byte. Reading them
/// makes every engine actually touch the value (so a lazy engine cannot skip the work),
/// and summing them over a phase gives a checksum that must be equal for every engine.
pub fn digest(value: &[u8]) -> u64 {
    match value.first() {
        None => 0,
        Some(&b) => digest_parts(value.len(), b),
    }
}

fn digest_parts(len: usize, first: u8) -> u64 {
    ((len as u64) << 8) | u64::from(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // The Go driver prints the same values for `-op selftest`.
        let d = DataSet {
            seed: 3,
            key_size_bytes: 24,
            value_size_bytes: 150,
        };
        let mut k = Vec::new();
        d.key(0, &mut k);
        let mut v = Vec::new();
        d.value(0, &mut v);
        assert_eq!(k.len(), 24);
        assert_eq!(v.len(), 150);
        assert_eq!(d.value_digest(0), digest(&v));
        let mut k1 = Vec::new();
        d.key(1, &mut k1);
        assert_ne!(k, k1);
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        // `untorn-bench-bbolt -op=selftest` prints the same key and digest.
        let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "ed8f01dbe4140b1d89a9817b8a6f46b301dd50d0a6e8eb9c");
        assert_eq!(d.value_digest(0), 38400);
    }

    #[test]
    fn short_and_odd_sizes() {
        let d = DataSet {
            seed: 1,
            key_size_bytes: 5,
            value_size_bytes: 1,
        };
        let mut v = Vec::new();
        d.value(7, &mut v);
        assert_eq!(d.value_digest(7), digest(&v));
    }
}
