//! Error types. One enum for the whole API, `#[non_exhaustive]`, one doc line per variant.
//!
//! Damage found in a file is always [`Error::Corrupted`] naming the page and the kind of
//! damage; it is never a panic and never wrong data.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What is wrong with a page or structure read from storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// The page's CRC32C does not match its bytes (torn write, bit rot, garbage).
    Checksum,
    /// The page is all zeros where a page was expected.
    Zeroed,
    /// The page says it is another page id (misdirected write, stale copy).
    PageId,
    /// The page verifies but is not the version its parent references (lost write).
    ParentMismatch,
    /// The page type is not valid at this position.
    PageType,
    /// An element count, offset or length lies outside the page.
    Bounds,
    /// Keys are not strictly ascending or lie outside the parent's separator bounds.
    KeyOrder,
    /// A page id is beyond the high-water mark or otherwise impossible.
    OutOfRange,
    /// The tree is deeper than the bound, or a page is reached twice (a cycle).
    Structure,
    /// A meta page is invalid.
    Meta,
    /// The journal contains a damaged record followed by valid ones, or does not continue the meta.
    Journal,
    /// A bucket header or freelist entry is invalid.
    Invalid,
    /// A node page's common key prefix or an element's stored key prefix does not match
    /// its keys.
    KeyPrefix,
}

impl CorruptionKind {
    /// Stable snake_case name, used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CorruptionKind::Checksum => "checksum",
            CorruptionKind::Zeroed => "zeroed",
            CorruptionKind::PageId => "page_id",
            CorruptionKind::ParentMismatch => "parent_mismatch",
            CorruptionKind::PageType => "page_type",
            CorruptionKind::Bounds => "bounds",
            CorruptionKind::KeyOrder => "key_order",
            CorruptionKind::OutOfRange => "out_of_range",
            CorruptionKind::Structure => "structure",
            CorruptionKind::Meta => "meta",
            CorruptionKind::Journal => "journal",
            CorruptionKind::Invalid => "invalid",
            CorruptionKind::KeyPrefix => "key_prefix",
        }
    }
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every error the engine returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error from the storage.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// An I/O error on a named file: opening, creating or locking the data file or its
    /// journal.
    #[error("{}: {source}", path.display())]
    File {
        /// The data file or its journal.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A page or structure in the file is damaged; `page` names it.
    #[error("corrupted page {page} ({kind}): {detail}")]
    Corrupted {
        /// The page id (or journal offset for `Journal`) where the damage was found.
        page: u64,
        /// What kind of damage.
        kind: CorruptionKind,
        /// A human-readable description.
        detail: String,
    },
    /// The file is not an untorn database (wrong magic, empty, truncated header).
    #[error("not an untorn database: {0}")]
    NotADatabase(String),
    /// The file was written by an unsupported format version.
    #[error(
        "unsupported format version {0}: this build reads format version 2; convert the file by \
         dumping it with the build that wrote it (`untorn dump FILE > FILE.jsonl`) and loading \
         the dump with this one (`untorn load NEW < FILE.jsonl`)"
    )]
    UnsupportedVersion(u32),
    /// The journal beside the data file belongs to another database: it is never replayed.
    #[error(
        "the journal belongs to another database (database id {database}, journal id {journal}): \
         it was not replayed; if the data file is right, `untorn recover FILE --rollback` moves \
         the journal aside and opens the data file as it is"
    )]
    ForeignJournal {
        /// The data file's database id (hex).
        database: String,
        /// The id the journal's records carry (hex).
        journal: String,
    },
    /// The meta says the journal may hold newer commits, but the journal is missing or empty.
    #[error(
        "the journal is missing or empty, but the database was open for writing at txid {txid}: \
         commits acknowledged after txid {txid} may be lost; restore the journal, or accept the \
         loss with `untorn recover FILE --rollback`"
    )]
    JournalMissing {
        /// The txid of the newest checkpointed state (what a rollback opens at).
        txid: u64,
    },
    /// A meta slot is damaged and nothing proves it older than the other slot.
    #[error(
        "meta slot {slot} is damaged ({detail}) and nothing proves it older than slot {other_slot} \
         (txid {other_slot_txid}){claimed}; a rollback to txid {other_slot_txid} \
         (`untorn recover FILE --rollback`) would discard every commit after it",
        claimed = claimed_txid.map(|t| format!("; it claims txid {t}")).unwrap_or_default()
    )]
    MetaDamaged {
        /// The damaged slot (0 or 1).
        slot: u64,
        /// The other slot.
        other_slot: u64,
        /// The txid the intact slot offers.
        other_slot_txid: u64,
        /// The txid the damaged slot claims, if its magic and version survived.
        claimed_txid: Option<u64>,
        /// Why the slot was rejected.
        detail: String,
    },
    /// A complete journal record fails its checksum: the commit is there but damaged.
    #[error(
        "the journal record of txid {txid} at offset {offset} is complete but damaged{ack}; \
         nothing was truncated; `untorn recover FILE --rollback` opens at txid {last_good} and \
         discards txid {txid}{later} (the journal is kept as evidence)",
        ack = if *acknowledged { " (a later record shows it was acknowledged)" } else { "" },
        last_good = txid.saturating_sub(1),
        later = if *later_records > 0 { format!(" and {} later", crate::words::count(*later_records, "record")) } else { String::new() }
    )]
    JournalRecordDamaged {
        /// The damaged commit.
        txid: u64,
        /// Its byte offset in the journal.
        offset: u64,
        /// Whether a later record proves the commit was durable (acknowledged).
        acknowledged: bool,
        /// Valid records of the same generation after it.
        later_records: u64,
    },
    /// A commit failed after its record may have reached the journal, and revoking the
    /// record failed too: whether the commit is visible after a reopen is unknown.
    #[error(
        "the outcome of commit txid {txid} is unknown: {detail}; revoking its journal record \
         failed too, so after a reopen the commit may or may not be present (the handle is \
         poisoned; reopen and look)"
    )]
    CommitOutcomeUnknown {
        /// The commit.
        txid: u64,
        /// The original failure and the revocation's.
        detail: String,
    },
    /// The page size is not a power of two between 4 KiB and 64 KiB.
    #[error("invalid page size {0}: must be a power of two from 4096 to 65536")]
    InvalidPageSize(u64),
    /// Another handle or process holds the database open for writing.
    #[error("database is locked by another handle or process")]
    Locked,
    /// A read-only open found the database changed under it (a writer in another process
    /// checkpointed) at every attempt to read one state.
    #[error("the database changed under a read-only open {attempts} times in a row (a writer in another process checkpoints faster than the open reads); try again")]
    Busy {
        /// Attempts made.
        attempts: u32,
    },
    /// A previous sync failed; the handle refuses writes until the database is reopened.
    #[error("database handle is poisoned by an earlier failed sync; reopen it to recover")]
    Poisoned,
    /// The database (or transaction) is read-only.
    #[error("database is open read-only")]
    ReadOnly,
    /// The storage is full.
    #[error("no space left on storage")]
    NoSpace,
    /// The named bucket does not exist (or was deleted by this transaction).
    #[error("bucket {} not found", ShowBytes(name))]
    BucketNotFound {
        /// The bucket's name (in its parent).
        name: Vec<u8>,
    },
    /// A bucket with that name already exists.
    #[error("bucket {} already exists", ShowBytes(name))]
    BucketExists {
        /// The bucket's name (in its parent).
        name: Vec<u8>,
    },
    /// The key names a bucket where a value was expected, or a value where a bucket was expected.
    #[error("key {} holds a {found}, not a {expected}", ShowBytes(key))]
    IncompatibleValue {
        /// The key (or bucket name).
        key: Vec<u8>,
        /// What the operation wanted ("bucket" or "value").
        expected: &'static str,
        /// What the key holds.
        found: &'static str,
    },
    /// Keys must be at least one byte.
    #[error("key is empty")]
    KeyEmpty,
    /// The key is longer than [`crate::MAX_KEY_SIZE`].
    #[error("key of {0} bytes is longer than the maximum")]
    KeyTooLarge(usize),
    /// The value is longer than [`crate::MAX_VALUE_SIZE`].
    #[error("value of {0} bytes is longer than the maximum")]
    ValueTooLarge(usize),
    /// Nesting of buckets is deeper than [`crate::MAX_BUCKET_DEPTH`].
    #[error("bucket nesting deeper than the maximum")]
    TooDeep,
    /// A bucket's sequence counter would overflow.
    #[error("bucket sequence overflow")]
    SequenceOverflow,
    /// An invalid argument (message says which).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A typed bucket could not encode or decode a key or value (message says which
    /// bucket and why).
    #[error("typed bucket: {0}")]
    Codec(String),
    /// The operation was cancelled by a progress callback.
    #[error("cancelled")]
    Cancelled,
    /// A memory budget is too small for the operation (salvage: its I/O buffers, or its
    /// per-page index, do not fit).
    #[error("memory budget of {budget} bytes is too small: {what} needs {needed} bytes")]
    MemoryBudget {
        /// The budget, in bytes.
        budget: u64,
        /// What does not fit.
        what: &'static str,
        /// Bytes it needs (at least).
        needed: u64,
    },
    /// An internal invariant did not hold (a bug in untorn, never caused by file contents).
    #[error("internal error: {0} (a bug in untorn; please report it)")]
    Internal(&'static str),
}

impl Error {
    /// [`Error::BucketNotFound`] for `name`: `tx.bucket("users")?.ok_or_else(||
    /// Error::bucket_not_found("users"))?`.
    pub fn bucket_not_found(name: impl AsRef<[u8]>) -> Self {
        Error::BucketNotFound {
            name: name.as_ref().to_vec(),
        }
    }

    /// [`Error::IncompatibleValue`] for `key`.
    pub(crate) fn incompatible(key: &[u8], expected: &'static str, found: &'static str) -> Self {
        Error::IncompatibleValue {
            key: key.to_vec(),
            expected,
            found,
        }
    }

    /// Shorthand for a corruption error.
    pub fn corrupted(page: u64, kind: CorruptionKind, detail: impl Into<String>) -> Self {
        Error::Corrupted {
            page,
            kind,
            detail: detail.into(),
        }
    }

    /// A copy of this error (for handing one failure to several batched callers).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io(e) => Error::Io(io::Error::new(e.kind(), e.to_string())),
            Error::File { path, source } => Error::File {
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Error::Corrupted { page, kind, detail } => Error::Corrupted {
                page: *page,
                kind: *kind,
                detail: detail.clone(),
            },
            Error::NotADatabase(s) => Error::NotADatabase(s.clone()),
            Error::UnsupportedVersion(v) => Error::UnsupportedVersion(*v),
            Error::ForeignJournal { database, journal } => Error::ForeignJournal {
                database: database.clone(),
                journal: journal.clone(),
            },
            Error::JournalMissing { txid } => Error::JournalMissing { txid: *txid },
            Error::MetaDamaged {
                slot,
                other_slot,
                other_slot_txid,
                claimed_txid,
                detail,
            } => Error::MetaDamaged {
                slot: *slot,
                other_slot: *other_slot,
                other_slot_txid: *other_slot_txid,
                claimed_txid: *claimed_txid,
                detail: detail.clone(),
            },
            Error::JournalRecordDamaged {
                txid,
                offset,
                acknowledged,
                later_records,
            } => Error::JournalRecordDamaged {
                txid: *txid,
                offset: *offset,
                acknowledged: *acknowledged,
                later_records: *later_records,
            },
            Error::CommitOutcomeUnknown { txid, detail } => Error::CommitOutcomeUnknown {
                txid: *txid,
                detail: detail.clone(),
            },
            Error::InvalidPageSize(v) => Error::InvalidPageSize(*v),
            Error::Locked => Error::Locked,
            Error::Busy { attempts } => Error::Busy {
                attempts: *attempts,
            },
            Error::Poisoned => Error::Poisoned,
            Error::ReadOnly => Error::ReadOnly,
            Error::NoSpace => Error::NoSpace,
            Error::BucketNotFound { name } => Error::BucketNotFound { name: name.clone() },
            Error::BucketExists { name } => Error::BucketExists { name: name.clone() },
            Error::IncompatibleValue {
                key,
                expected,
                found,
            } => Error::IncompatibleValue {
                key: key.clone(),
                expected,
                found,
            },
            Error::KeyEmpty => Error::KeyEmpty,
            Error::KeyTooLarge(n) => Error::KeyTooLarge(*n),
            Error::ValueTooLarge(n) => Error::ValueTooLarge(*n),
            Error::TooDeep => Error::TooDeep,
            Error::SequenceOverflow => Error::SequenceOverflow,
            Error::InvalidArgument(s) => Error::InvalidArgument(s.clone()),
            Error::Codec(s) => Error::Codec(s.clone()),
            Error::Cancelled => Error::Cancelled,
            Error::MemoryBudget {
                budget,
                what,
                needed,
            } => Error::MemoryBudget {
                budget: *budget,
                what,
                needed: *needed,
            },
            Error::Internal(s) => Error::Internal(s),
        }
    }

    /// Whether this error reports damage in the file.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corrupted { .. })
    }

    /// Whether open refused the database because recovering it would need a choice only
    /// the user can make (`Recovery::RollbackToLastGood` opens it, reporting what is lost).
    pub fn needs_rollback(&self) -> bool {
        matches!(
            self,
            Error::ForeignJournal { .. }
                | Error::JournalMissing { .. }
                | Error::MetaDamaged { .. }
                | Error::JournalRecordDamaged { .. }
                | Error::Corrupted {
                    kind: CorruptionKind::Journal,
                    ..
                }
        )
    }

    /// Maps an I/O error, recognising a full disk.
    pub fn from_io(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
            Error::NoSpace
        } else {
            Error::Io(e)
        }
    }
}

/// Bytes in an error message: `"text"` when they are printable UTF-8 that does not
/// start with `0x`, else `0x<hex>` — the notation the `untorn` CLI prints and accepts.
struct ShowBytes<'a>(&'a [u8]);

impl fmt::Display for ShowBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(self.0) {
            Ok(s) if !s.is_empty() && !s.starts_with("0x") && !s.chars().any(char::is_control) => {
                write!(f, "{s:?}")
            }
            _ => {
                f.write_str("0x")?;
                self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
