//! The emission: buckets get their names and places from the winning bucket entries
//! (a bucket whose entry is lost goes under `lost+found`), then every bucket is emitted
//! in path order, each followed by its winners in key order; overflow values are read
//! from the source as they are emitted.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::candidates::Winners;
use super::rebuild::Tree;
use super::scan::Scan;
use crate::error::Error;
use crate::format::{overflow_value_range, BucketHeader, BucketId, PageRef, SpillValue};
use crate::limits::MAX_BUCKET_DEPTH;
use crate::report::{DumpItem, Lost, Pair, SalvageSummary, Stale};

/// The bucket a bucket whose own entry is lost is recovered under.
pub const LOST_AND_FOUND: &[u8] = b"lost+found";

/// A bucket's place: its parent tree, name and sequence, from the entry naming it.
pub(super) struct Place {
    parent: BucketId,
    name: Vec<u8>,
    sequence: u64,
    older: bool,
}

/// The places of buckets and the root's plain values, gathered from the winners as
/// the candidates are resolved.
#[derive(Default)]
pub(super) struct Places {
    places: BTreeMap<BucketId, Place>,
    /// Plain values among the root bucket's winners (it holds only buckets).
    root_plain: u64,
}

impl Places {
    /// Takes note of one winner (winners come in (tree, key) order); the bytes it holds
    /// on to.
    pub fn see(&mut self, tree: u64, key: &[u8], value: &SpillValue, older: bool) -> u64 {
        let t = BucketId(tree);
        let h: &BucketHeader = match value {
            SpillValue::Bucket(h) => h,
            _ => {
                if t == BucketId::ROOT {
                    self.root_plain += 1;
                }
                return 0;
            }
        };
        if h.bucket_id.get() < 2 || h.bucket_id == t {
            return 0;
        }
        let better = self
            .places
            .get(&h.bucket_id)
            .is_none_or(|p| p.older && !older);
        if !better {
            return 0;
        }
        self.places.insert(
            h.bucket_id,
            Place {
                parent: t,
                name: key.to_vec(),
                sequence: h.sequence,
                older,
            },
        );
        key.len() as u64
    }
}

/// Emits every bucket and winner; adds what is lost to `summary`.
pub(super) fn emit_all<E: From<Error>>(
    scan: &Scan<'_>,
    trees: &BTreeMap<BucketId, Tree>,
    places: &Places,
    winners: &Winners,
    summary: &mut SalvageSummary,
    emit: &mut impl FnMut(DumpItem) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let Places { places, root_plain } = places;
    // Paths, bounded by the nesting limit (a loop of names ends in lost+found).
    let path_of = |b: BucketId| -> Vec<Vec<u8>> {
        let mut names = Vec::new();
        let mut at = b;
        let mut seen = HashSet::new();
        loop {
            if at == BucketId::ROOT {
                names.reverse();
                return names;
            }
            match places.get(&at) {
                Some(p) if seen.insert(at) && names.len() < MAX_BUCKET_DEPTH => {
                    names.push(p.name.clone());
                    at = p.parent;
                }
                _ => {
                    names.push(format!("bucket-{}", at.get()).into_bytes());
                    names.push(LOST_AND_FOUND.to_vec());
                    names.reverse();
                    return names;
                }
            }
        }
    };
    let mut ordered: Vec<(Vec<Vec<u8>>, BucketId)> = trees
        .keys()
        .copied()
        .chain(places.keys().copied())
        .filter(|&t| t != BucketId::ROOT)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|t| (path_of(t), t))
        .filter(|(p, _)| p.len() <= MAX_BUCKET_DEPTH)
        .collect();
    ordered.sort();
    let lost_found_used = ordered.iter().any(|(p, t)| {
        p.first().map(Vec::as_slice) == Some(LOST_AND_FOUND) && !places.contains_key(t)
    });
    if lost_found_used
        && !ordered
            .iter()
            .any(|(p, _)| p.as_slice() == [LOST_AND_FOUND.to_vec()])
    {
        emit(DumpItem::Bucket {
            path: vec![LOST_AND_FOUND.to_vec()],
            sequence: 0,
        })?;
    }
    for (path, t) in &ordered {
        if !places.contains_key(t) && !path.is_empty() {
            summary.lost.push(Lost {
                bucket: path.clone(),
                reason: format!(
                    "the entry naming bucket {t} is lost: its keys are kept under {}",
                    String::from_utf8_lossy(&path.join(&b'/'))
                ),
                ..Lost::default()
            });
        }
        summary.buckets_recovered += 1;
        emit(DumpItem::Bucket {
            path: path.clone(),
            sequence: places.get(t).map_or(0, |p| p.sequence),
        })?;
        let Some(tree) = trees.get(t) else { continue };
        for r in &tree.lost {
            summary.lost.push(Lost {
                bucket: path.clone(),
                page: r.page,
                lower: r.lo.clone(),
                upper: r.hi.clone(),
                reason: r.reason.clone(),
                ..Lost::default()
            });
        }
        if !tree.reached {
            summary.lost.push(Lost {
                bucket: path.clone(),
                reason: "the bucket's tree is not reachable from the newest commit: its keys come from unreferenced pages".into(),
                ..Lost::default()
            });
        }
        winners.for_each(t.get(), |rec| {
            let value = match &rec.value {
                SpillValue::Bucket(_) => return Ok(()),
                SpillValue::Inline(v) => v.clone(),
                SpillValue::Overflow(r, len) => match overflow(scan, r, *t, *len) {
                    Some(v) => v,
                    None => {
                        summary.lost.push(Lost {
                            bucket: path.clone(),
                            page: Some(r.page_id.get()),
                            lower: Some(rec.key.clone()),
                            reason: "the key's overflow value is unreadable".into(),
                            ..Lost::default()
                        });
                        return Ok(());
                    }
                },
            };
            if rec.older {
                summary.possibly_older.push(Stale {
                    bucket: path.clone(),
                    key: rec.key.clone(),
                    txid: rec.txid,
                });
            }
            summary.keys_recovered += 1;
            emit(DumpItem::Pair(Pair {
                bucket: path.clone(),
                key: rec.key.clone(),
                value,
            }))
        })?;
    }
    if let Some(root) = trees.get(&BucketId::ROOT) {
        for r in &root.lost {
            summary.lost.push(Lost {
                bucket: Vec::new(),
                page: r.page,
                lower: r.lo.clone(),
                upper: r.hi.clone(),
                reason: format!("bucket names lost: {}", r.reason),
                ..Lost::default()
            });
        }
    }
    if *root_plain > 0 {
        summary.notes.push(format!(
            "{root_plain} plain values found in the root bucket's pages ignored (it holds only buckets)"
        ));
    }
    Ok(())
}

fn overflow(scan: &Scan<'_>, r: &PageRef, tree: BucketId, len: u64) -> Option<Vec<u8>> {
    let loc = scan.resolve(r, tree)?;
    let page = scan.read(&loc).ok()?;
    let range = overflow_value_range(&page, &loc.h, len).ok()?;
    page.get(range).map(<[u8]>::to_vec)
}
