//! The workspace's one test PRNG (splitmix64). Every random decision in the simulator,
//! the torture runner and the mutation tests comes from one of these, so a seed
//! reproduces a run bit for bit.

/// splitmix64: tiny, fast, and good enough for fault scheduling (not for cryptography).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for a named sub-stream of `seed`, so independent decisions (write
    /// faults, read faults, workload) do not perturb one another.
    pub fn derive(seed: u64, stream: u64) -> Self {
        let mut p = Self::new(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        p.next_u64();
        p
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Multiply-shift: unbiased enough for test scheduling and branch-free. The
        // product's high half is below `n`, so the cast keeps all of it.
        #[allow(clippy::cast_possible_truncation)]
        let v = ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64;
        v
    }

    /// A `usize` in `0..n`.
    pub fn index(&mut self, n: usize) -> usize {
        // Below `n`, which is a usize: the cast keeps all of it.
        #[allow(clippy::cast_possible_truncation)]
        let i = self.below(n as u64) as usize;
        i
    }

    /// A value in `lo..=hi`.
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_million / 1_000_000`.
    pub fn chance(&mut self, per_million: u32) -> bool {
        per_million > 0 && self.below(1_000_000) < u64::from(per_million)
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        // Keeping the low byte is the point of the cast.
        #[allow(clippy::cast_possible_truncation)]
        let b = self.next_u64() as u8;
        b
    }

    /// Fills `buf` with random bytes (eight per draw, low byte first).
    // Keeping the low byte is the point of the cast.
    #[allow(clippy::cast_possible_truncation)]
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut x = self.next_u64();
            for b in chunk {
                *b = x as u8;
                x >>= 8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        let mut c = Rng::derive(7, 1);
        let zs: Vec<u64> = (0..16).map(|_| c.next_u64()).collect();
        assert_ne!(xs, zs);
    }

    #[test]
    fn below_stays_in_range() {
        let mut p = Rng::new(1);
        for n in 1..200u64 {
            assert!(p.below(n) < n);
        }
        assert_eq!(p.below(0), 0);
    }
}
