//! What dumps and salvages yield ([`DumpItem`]) and what a salvage reports
//! ([`SalvageSummary`]), one shape for both formats.

/// One key/value pair read out of a database, with its bucket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// Bucket path from the root (empty for keys stored directly in the root bucket,
    /// which bbolt allows).
    pub bucket: Vec<Vec<u8>>,
    /// Key.
    pub key: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
}

/// What a dump or a salvage yields, in key order: buckets (so that empty buckets and
/// sequences survive) and key/value pairs, a bucket before its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpItem {
    /// A bucket at this path, with its sequence.
    Bucket {
        /// Path including the bucket's own name.
        path: Vec<Vec<u8>>,
        /// Bucket sequence.
        sequence: u64,
    },
    /// A key/value pair.
    Pair(Pair),
}

/// A range of data a salvage could not read, in the user's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lost {
    /// The bucket the data belonged to.
    pub bucket: Vec<Vec<u8>>,
    /// The page that failed, when known.
    pub page: Option<u64>,
    /// The page that referenced it, when known.
    pub parent: Option<u64>,
    /// Keys from here (inclusive), when known.
    pub lower: Option<Vec<u8>>,
    /// Keys up to here (exclusive), when known.
    pub upper: Option<Vec<u8>>,
    /// Keys after this one (the last key read before the damage), when known.
    pub after: Option<Vec<u8>>,
    /// Why.
    pub reason: String,
}

/// What a salvage recovered and lost, for either format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalvageSummary {
    /// Key/value pairs recovered.
    pub keys_recovered: u64,
    /// Buckets recovered (not counting the root bucket).
    pub buckets_recovered: u64,
    /// What could not be read.
    pub lost: Vec<Lost>,
    /// Keys recovered from pages the newest commit no longer references (its copy of their
    /// key range is lost): each may be older than its last committed value, or deleted since.
    pub possibly_older: Vec<Stale>,
    /// Page-level salvage: pages read (data file, below its end) and journal images read.
    pub pages_scanned: u64,
    /// Page-level salvage: pages that failed verification (torn, zeroed, garbage,
    /// misdirected) and belong to no verified extent.
    pub pages_unreadable: u64,
    /// Decisions worth a line each (which commit was taken as the newest, what was ignored).
    pub notes: Vec<String>,
}

impl SalvageSummary {
    /// Nothing was lost: no unreadable range, no key that may be older than its last
    /// committed value.
    pub fn nothing_lost(&self) -> bool {
        self.lost.is_empty() && self.possibly_older.is_empty()
    }
}

/// A key recovered from a page the newest commit does not reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stale {
    /// Bucket path the key was recovered into.
    pub bucket: Vec<Vec<u8>>,
    /// Key.
    pub key: Vec<u8>,
    /// The txid of the page it came from.
    pub txid: u64,
}
