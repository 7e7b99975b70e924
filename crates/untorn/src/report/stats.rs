//! [`Stats`]: what `untorn stats` prints, one shape for both formats.

/// What `untorn stats` prints, for either format. Page counts count page ids (a 3-page
/// leaf extent counts as 3 leaf pages; a bbolt node's overflow pages count as overflow).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Bytes per page.
    pub page_size: usize,
    /// Txid of the snapshot.
    pub txid: u64,
    /// High-water mark (page ids below it belong to the file format).
    pub high_water: u64,
    /// Length of the data file in pages.
    pub file_pages: u64,
    /// Meta pages (always 2).
    pub meta_pages: u64,
    /// Pages in branch extents.
    pub branch_pages: u64,
    /// Pages in leaf extents.
    pub leaf_pages: u64,
    /// Pages in overflow-value extents.
    pub overflow_pages: u64,
    /// Pages in the freelist extent.
    pub freelist_pages: u64,
    /// Pages listed as free.
    pub free_pages: u64,
    /// Pages neither reachable nor free.
    pub leaked_pages: u64,
    /// Reachable pages that failed verification.
    pub corrupt_pages: u64,
    /// Deepest tree, in levels (a single leaf is depth 1).
    pub tree_depth_max: u32,
    /// Buckets (not counting the root bucket).
    pub buckets: u64,
    /// Key/value pairs in all buckets.
    pub keys: u64,
    /// Bytes of keys of key/value pairs.
    pub key_bytes: u64,
    /// Bytes of values (inline and overflow).
    pub value_bytes: u64,
    /// Header plus payload bytes used in branch and leaf extents.
    pub node_bytes_used: u64,
    /// Bytes available in branch and leaf extents (extent size).
    pub node_bytes_available: u64,
    /// Findings the walk produced (see `check` for details).
    pub findings: u64,
}

impl Stats {
    /// Bytes used over bytes available in branch and leaf pages (0.0 when there are none).
    pub fn fill_factor(&self) -> f64 {
        if self.node_bytes_available == 0 {
            0.0
        } else {
            self.node_bytes_used as f64 / self.node_bytes_available as f64
        }
    }
}
