//! Where database ids and journal salts come from: operating-system randomness by
//! default, or a fixed seed (the simulator and the golden-file test need the same bytes
//! from the same run).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::format::DbId;

/// A source of ids: a splitmix64 stream, seeded randomly or by the caller.
#[derive(Debug, Clone)]
pub(crate) struct Entropy {
    state: u64,
}

impl Entropy {
    /// Seeded from the process's random hash keys, the time and a counter: distinct for
    /// every handle and every process.
    pub(crate) fn random() -> Entropy {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        Entropy { state: h.finish() }
    }

    /// A fixed stream: the same seed gives the same ids and salts.
    pub(crate) fn seeded(seed: u64) -> Entropy {
        Entropy {
            state: seed ^ 0x6a09_e667_f3bc_c909,
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A new database id (never all zeros).
    pub(crate) fn db_id(&mut self) -> DbId {
        let a = self.next_u64();
        DbId::from_words(a, self.next_u64() | 1)
    }

    /// A new journal salt for the generation that continues the meta with `meta_seq`
    /// (never 0). The sequence is mixed in so that even a fixed-seed stream restarted at
    /// every open gives distinct salts along a database's chain of generations.
    pub(crate) fn salt(&mut self, meta_seq: u64) -> u64 {
        let mut mixed = Entropy {
            state: self.next_u64() ^ meta_seq.wrapping_mul(0xD6E8_FEB8_6659_FD93),
        };
        mixed.next_u64() | 1
    }
}
