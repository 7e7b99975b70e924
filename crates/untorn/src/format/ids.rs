//! Page ids and transaction ids: the two integers every structure of the file carries,
//! typed so that one cannot be passed where the other is meant.
//!
//! A page id is also the file's only notion of position: page `id` starts at byte
//! `id * page_size` of the data file ([`PageId::offset`] is the one place that says so).

use std::fmt;

/// A page id: the page's position in the data file, in pages. Ids 0 and 1 are the two
/// meta pages; 0 in a reference means "no page".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PageId(pub u64);

impl PageId {
    /// The first page that can hold a node, an overflow value or the freelist (after
    /// the two meta pages). Also the high-water mark of an empty database.
    pub const FIRST_DATA: PageId = PageId(2);

    /// The id as an integer (for messages, reports and arithmetic on runs).
    pub fn get(self) -> u64 {
        self.0
    }

    /// Byte offset of the page in the data file, or `None` if it does not fit a `u64`.
    pub fn offset(self, page_size: usize) -> Option<u64> {
        self.0.checked_mul(page_size as u64)
    }

    /// The id `pages` pages further on, or `None` on overflow.
    pub fn checked_add(self, pages: u64) -> Option<PageId> {
        self.0.checked_add(pages).map(PageId)
    }
}

impl fmt::Display for PageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A bucket id: the identity of one bucket's tree, carried by every page of that tree
/// (`tree_id` in the page header) and by the bucket's header. [`BucketId::ROOT`] is the
/// root bucket (the catalog of top-level buckets); user buckets get ids from the meta's
/// `next_bucket_id`, starting at [`BucketId::FIRST_USER`], never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BucketId(pub u64);

impl BucketId {
    /// No bucket: the `tree_id` of meta and freelist pages.
    pub const NONE: BucketId = BucketId(0);
    /// The root bucket.
    pub const ROOT: BucketId = BucketId(1);
    /// The first id a user bucket gets.
    pub const FIRST_USER: BucketId = BucketId(2);

    /// The id as an integer (for messages and reports).
    pub fn get(self) -> u64 {
        self.0
    }

    /// The next id, or `None` if the counter is exhausted.
    pub fn next(self) -> Option<BucketId> {
        self.0.checked_add(1).map(BucketId)
    }
}

impl fmt::Display for BucketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A database's identity: 16 random bytes generated at creation, in both metas and in
/// every journal record, so a journal is never replayed into another database's file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DbId(pub [u8; 16]);

impl DbId {
    /// The all-zero id (never a valid database's).
    pub const ZERO: DbId = DbId([0; 16]);

    /// Whether this is the all-zero id.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }

    /// The id made of two 64-bit words (little-endian, `a` first).
    pub fn from_words(a: u64, b: u64) -> DbId {
        let mut id = [0u8; 16];
        let (lo, hi) = id.split_at_mut(8);
        lo.copy_from_slice(&a.to_le_bytes());
        hi.copy_from_slice(&b.to_le_bytes());
        DbId(id)
    }
}

impl fmt::Display for DbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbId({self})")
    }
}

/// A transaction id: commits are numbered 1, 2, 3, ...; 0 is the empty database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TxId(pub u64);

impl TxId {
    /// The txid of a database that has never committed.
    pub const INITIAL: TxId = TxId(0);

    /// The txid as an integer (for messages and the public API).
    pub fn get(self) -> u64 {
        self.0
    }

    /// The next commit's txid, or `None` if the counter is exhausted.
    pub fn next(self) -> Option<TxId> {
        self.0.checked_add(1).map(TxId)
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
