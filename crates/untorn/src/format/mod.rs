//! On-disk encodings. **Invariant:** only this module knows byte offsets; every other
//! module works with the decoded types re-exported here. Layouts are documented in the
//! header comment of each file and in `docs/file_format.md`.

pub mod bytes;
pub mod freelist;
pub mod ids;
pub mod journal;
pub mod meta;
pub mod node;
pub mod overflow;
pub mod page;
pub mod readers;
pub mod rebranch;
pub mod spill;
pub mod verified;

pub use freelist::{
    decode_freelist, encode_freelist, freelist_bytes, freelist_runs_unchecked, RUN_SIZE,
};
pub use ids::{BucketId, DbId, PageId, TxId};
pub use journal::{
    body_crc, decode_aux, encode_aux, RecordHeader, RecordKind, Revocation, Sector, Trailer,
    FLAG_SYNCED_COMMIT, RECORD_HEADER_SIZE,
};
pub use meta::{Meta, MetaState, FORMAT_VERSION, MAGIC};
pub use node::{
    branch_entry_size, common_prefix_len, encode_branch, encode_leaf, key_prefix_at,
    leaf_entry_size, BucketHeader, LeafValue, NodeView, BUCKET_HEADER_SIZE, OVERFLOW_VALUE_SIZE,
};
pub use overflow::{encode_overflow, overflow_value, overflow_value_range};
pub use page::{
    check_ref, check_tree, decode_header, extent_pages_for, is_valid_page_size, page_checksum,
    page_sizes, peek_extent_pages, peek_txid, seal_page, verify_page, PageHeader, PageRef,
    PageType, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MIN_PAGE_SIZE, PAGE_HEADER_SIZE, PAGE_REF_SIZE,
};
pub use rebranch::rebranch;
pub use spill::{SpillRecord, SpillValue, SPILL_LEN_SIZE};
pub use verified::{PageSlice, VerifiedPage};
