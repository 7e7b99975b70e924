//! What a surgery did and what it dropped, in the user's terms.

use std::fmt;

use crate::report::count as counted;

/// Bytes as the CLI shows them: `"text"` for printable UTF-8 not starting with `0x`,
/// else `0x<hex>`.
pub(crate) fn show_key(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !s.is_empty() && !s.starts_with("0x") && !s.chars().any(char::is_control) => {
            format!("{s:?}")
        }
        _ => {
            let mut out = String::from("0x");
            for x in b {
                out.push_str(&format!("{x:02x}"));
            }
            out
        }
    }
}

/// Data a surgery dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dropped {
    /// Keys removed from a leaf (values, and nested buckets named in `buckets`).
    Keys {
        /// The bucket path holding them (empty: the root bucket).
        bucket: Vec<Vec<u8>>,
        /// The first key removed.
        first: Vec<u8>,
        /// The last key removed.
        last: Vec<u8>,
        /// How many keys.
        count: u64,
        /// Nested buckets among them (their whole contents are dropped).
        buckets: Vec<Vec<u8>>,
    },
    /// A subtree removed from a branch: every key from `from` (inclusive) below `to`
    /// (exclusive; `None`: to the end of the parent's range).
    Subtree {
        /// The bucket path.
        bucket: Vec<Vec<u8>>,
        /// The subtree's root page.
        page: u64,
        /// Lower bound (inclusive), `None`: the start of the parent's range.
        from: Option<Vec<u8>>,
        /// Upper bound (exclusive).
        to: Option<Vec<u8>>,
        /// Key/value pairs found in its verified leaves (`None`: not all readable).
        keys: Option<u64>,
    },
    /// A page's contents replaced by another page's.
    Replaced {
        /// The bucket path of the overwritten page.
        bucket: Vec<Vec<u8>>,
        /// The overwritten page.
        page: u64,
        /// The page copied over it.
        from_page: u64,
    },
    /// Commits given up by a revert of the meta.
    Commits {
        /// The txid the file is at now.
        kept_txid: u64,
        /// The newest txid the slots knew of (everything after `kept_txid` up to it).
        through_txid: Option<u64>,
        /// Commits in the journal after the newest meta are discarded too.
        journal: bool,
    },
}

fn path(b: &[Vec<u8>]) -> String {
    if b.is_empty() {
        "the root bucket".to_owned()
    } else {
        let p: Vec<String> = b.iter().map(|k| show_key(k)).collect();
        format!("bucket {}", p.join("/"))
    }
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dropped::Keys {
                bucket,
                first,
                last,
                count,
                buckets,
            } => {
                write!(
                    f,
                    "{} of {} from {} through {}",
                    counted(*count, "key"),
                    path(bucket),
                    show_key(first),
                    show_key(last)
                )?;
                if !buckets.is_empty() {
                    let b: Vec<String> = buckets.iter().map(|k| show_key(k)).collect();
                    write!(
                        f,
                        ", including {} {} with everything in them",
                        if buckets.len() == 1 {
                            "the nested bucket"
                        } else {
                            "the nested buckets"
                        },
                        b.join(", ")
                    )?;
                }
                Ok(())
            }
            Dropped::Subtree {
                bucket,
                page,
                from,
                to,
                keys,
            } => {
                let from = from
                    .as_deref()
                    .map_or_else(|| "its start".to_owned(), show_key);
                let to = to.as_deref().map_or_else(|| "its end".to_owned(), show_key);
                write!(
                    f,
                    "the subtree at page {page} of {}: every key from {from} up to (not including) {to}",
                    path(bucket)
                )?;
                match keys {
                    Some(n) => write!(f, " ({} in its leaves)", counted(*n, "key/value pair")),
                    None => write!(f, " (not all of its pages verify: the count is unknown)"),
                }
            }
            Dropped::Replaced {
                bucket,
                page,
                from_page,
            } => write!(
                f,
                "the contents of page {page} of {} (replaced by page {from_page}'s)",
                path(bucket)
            ),
            Dropped::Commits {
                kept_txid,
                through_txid,
                journal,
            } => {
                match through_txid {
                    Some(t) if *t > *kept_txid => {
                        write!(f, "commits {} through {t}", kept_txid + 1)?
                    }
                    Some(_) => write!(f, "no commit the meta slots record")?,
                    None => write!(
                        f,
                        "every commit after txid {kept_txid} (the damaged slot's txid is unknown)"
                    )?,
                }
                if *journal {
                    write!(f, ", and every commit the journal held after them")?;
                }
                Ok(())
            }
        }
    }
}

/// What a surgery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// One sentence: what changed.
    pub message: String,
    /// What data it dropped (empty: nothing).
    pub dropped: Vec<Dropped>,
    /// The txid the result is at.
    pub txid: u64,
    /// Whether the freelist was rebuilt by a walk of the result.
    pub freelist_rebuilt: bool,
    /// Pages neither reachable nor free in the result (a walk met an unreadable page, so
    /// the freelist could not be rebuilt; they are reported as leaks).
    pub leaked_pages: u64,
    /// Unreadable pages the result's tree still references.
    pub unreadable_pages: Vec<u64>,
}
