//! The reference model the simulator's runs and the engine's model tests check the
//! engine against: nested buckets of
//! key/value pairs, with values described by a (tag, length) spec so that snapshots of
//! the model are cheap to clone even when values are tens of KiB.

use std::collections::BTreeMap;

use super::rng::Rng;

/// A bucket's path from the root (top-level bucket name first).
pub type BucketPath = Vec<Vec<u8>>;

/// A value, regenerated deterministically from its tag and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueSpec {
    /// Unique per put, so every overwrite changes the bytes.
    pub tag: u64,
    /// Length in bytes.
    pub len: u32,
}

impl ValueSpec {
    /// The value's bytes: the tag (little-endian, for debugging dumps) then seeded noise.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.len as usize];
        Rng::derive(self.tag, 0x0076_616c_7565).fill(&mut out);
        // Keeping each byte of the tag is the point of the cast.
        #[allow(clippy::cast_possible_truncation)]
        for (i, dst) in out.iter_mut().take(8).enumerate() {
            *dst = (self.tag >> (8 * i)) as u8;
        }
        out
    }
}

/// One database state: bucket path → its key/value pairs. A bucket exists iff its path
/// is a key of `buckets`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    /// Every bucket, including nested ones.
    pub buckets: BTreeMap<BucketPath, BTreeMap<Vec<u8>, ValueSpec>>,
}

/// One operation of a write transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Put a value (insert or overwrite).
    Put {
        /// Bucket.
        path: BucketPath,
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: ValueSpec,
    },
    /// Delete a key (present or not).
    Delete {
        /// Bucket.
        path: BucketPath,
        /// Key.
        key: Vec<u8>,
    },
    /// Create a bucket (its parent exists); if it already exists, expect `BucketExists`.
    CreateBucket {
        /// The new bucket's path.
        path: BucketPath,
    },
    /// Delete an existing bucket and everything below it.
    DeleteBucket {
        /// The bucket's path.
        path: BucketPath,
    },
}

impl Model {
    /// Whether a bucket exists.
    pub fn has_bucket(&self, path: &[Vec<u8>]) -> bool {
        self.buckets.contains_key(path)
    }

    /// Sub-bucket names of `path` (top-level names for the empty path), sorted.
    pub fn child_buckets(&self, path: &[Vec<u8>]) -> Vec<Vec<u8>> {
        self.buckets
            .keys()
            .filter(|p| p.len() == path.len() + 1 && p.starts_with(path))
            .filter_map(|p| p.last().cloned())
            .collect()
    }

    /// The value of `key` in bucket `path`.
    pub fn get(&self, path: &[Vec<u8>], key: &[u8]) -> Option<ValueSpec> {
        self.buckets.get(path).and_then(|m| m.get(key)).copied()
    }

    /// Applies `op`; returns what the engine call must return (`delete`'s "existed",
    /// `create_bucket`'s "created"), or `None` for puts and bucket deletes.
    pub fn apply(&mut self, op: &Op) -> Option<bool> {
        match op {
            Op::Put { path, key, value } => {
                if let Some(m) = self.buckets.get_mut(path) {
                    m.insert(key.clone(), *value);
                }
                None
            }
            Op::Delete { path, key } => Some(
                self.buckets
                    .get_mut(path)
                    .is_some_and(|m| m.remove(key).is_some()),
            ),
            Op::CreateBucket { path } => {
                if self.buckets.contains_key(path) {
                    Some(false)
                } else {
                    self.buckets.insert(path.clone(), BTreeMap::new());
                    Some(true)
                }
            }
            Op::DeleteBucket { path } => {
                self.buckets.retain(|p, _| !p.starts_with(path));
                None
            }
        }
    }

    /// Total key/value pairs in all buckets.
    pub fn key_count(&self) -> usize {
        self.buckets.values().map(BTreeMap::len).sum()
    }
}

/// Deepest bucket nesting generated workloads create.
const MAX_DEPTH: usize = 3;

/// The shape of generated workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Largest value a put writes (values above a page go to overflow extents).
    pub max_value_bytes: u64,
    /// Distinct keys per bucket (large: deep trees with branch pages).
    pub keyspace: u64,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            max_value_bytes: 20_000,
            keyspace: 48,
        }
    }
}

/// Draws a random operation valid against `model`. `next_tag` makes value tags unique.
pub fn random_op(rng: &mut Rng, model: &Model, next_tag: &mut u64) -> Op {
    random_op_with(rng, model, next_tag, &Shape::default())
}

/// The key with index `i` (fixed width, so keys sort by index).
pub fn key_name(i: u64) -> Vec<u8> {
    format!("k{i:06}").into_bytes()
}

/// Like [`random_op`], for a workload shape.
pub fn random_op_with(rng: &mut Rng, model: &Model, next_tag: &mut u64, shape: &Shape) -> Op {
    let max_value_bytes = shape.max_value_bytes;
    let paths: Vec<&BucketPath> = model.buckets.keys().collect();
    let roll = rng.below(100);
    // Bucket operations (percent of ops: create below `create`, delete below `delete`);
    // rare when trees are meant to grow deep, so keys concentrate in few buckets.
    let (create, delete) = if shape.keyspace > 100 {
        (2, 3)
    } else {
        (12, 16)
    };
    if paths.is_empty() || roll < create {
        // Create a bucket under the root or under an existing bucket.
        let parent: BucketPath = if paths.is_empty() || rng.below(3) == 0 {
            Vec::new()
        } else {
            paths
                .get(rng.index(paths.len()))
                .map(|p| (*p).clone())
                .unwrap_or_default()
        };
        let mut path = if parent.len() >= MAX_DEPTH {
            Vec::new()
        } else {
            parent
        };
        path.push(format!("b{}", rng.below(4)).into_bytes());
        return Op::CreateBucket { path };
    }
    let path = paths
        .get(rng.index(paths.len()))
        .map(|p| (*p).clone())
        .unwrap_or_default();
    // In deep-tree mode only nested buckets are deleted, so the big ones keep growing.
    if roll < delete && (shape.keyspace <= 100 || path.len() > 1) {
        return Op::DeleteBucket { path };
    }
    let existing: Vec<&Vec<u8>> = model
        .buckets
        .get(&path)
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    let key = if !existing.is_empty() && rng.below(3) == 0 {
        existing
            .get(rng.index(existing.len()))
            .map(|k| (*k).clone())
            .unwrap_or_default()
    } else {
        key_name(rng.below(shape.keyspace))
    };
    if roll < 34 {
        return Op::Delete { path, key };
    }
    let len = match rng.below(100) {
        0..=4 => 0,
        5..=74 => rng.range_inclusive(1, 300),
        75..=91 => rng.range_inclusive(301, 3000),
        // Larger than a 4 KiB page: overflow pages.
        _ => rng.range_inclusive(4097, 20_000),
    };
    let len = len.min(max_value_bytes);
    *next_tag += 1;
    Op::Put {
        path,
        key,
        value: ValueSpec {
            tag: *next_tag,
            len: u32::try_from(len).unwrap_or(0),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_bucket_removes_descendants_only() {
        let mut m = Model::default();
        let a = vec![b"a".to_vec()];
        let ab = vec![b"a".to_vec(), b"b".to_vec()];
        let ac = vec![b"ac".to_vec()];
        assert_eq!(m.apply(&Op::CreateBucket { path: a.clone() }), Some(true));
        assert_eq!(m.apply(&Op::CreateBucket { path: ab.clone() }), Some(true));
        assert_eq!(m.apply(&Op::CreateBucket { path: ac.clone() }), Some(true));
        assert_eq!(m.apply(&Op::CreateBucket { path: a.clone() }), Some(false));
        assert_eq!(m.child_buckets(&[]), vec![b"a".to_vec(), b"ac".to_vec()]);
        m.apply(&Op::DeleteBucket { path: a });
        assert!(!m.has_bucket(&ab));
        assert!(m.has_bucket(&ac));
    }

    #[test]
    fn value_bytes_are_deterministic_and_distinct() {
        let v = ValueSpec { tag: 9, len: 5000 };
        assert_eq!(v.bytes(), v.bytes());
        assert_eq!(v.bytes().len(), 5000);
        assert_ne!(v.bytes(), ValueSpec { tag: 10, len: 5000 }.bytes());
        assert!(ValueSpec { tag: 1, len: 0 }.bytes().is_empty());
    }

    #[test]
    fn random_ops_are_valid_against_the_model() {
        let mut rng = Rng::new(3);
        let mut m = Model::default();
        let mut tag = 0;
        for _ in 0..2000 {
            let op = random_op(&mut rng, &m, &mut tag);
            match &op {
                Op::Put { path, .. } | Op::Delete { path, .. } | Op::DeleteBucket { path } => {
                    assert!(m.has_bucket(path), "{op:?}");
                }
                Op::CreateBucket { path } => {
                    assert!(path.len() <= MAX_DEPTH + 1);
                    assert!(
                        m.has_bucket(path.get(..path.len() - 1).unwrap_or(&[])) || path.len() == 1
                    );
                }
            }
            m.apply(&op);
        }
        assert!(m.key_count() > 0);
    }
}
