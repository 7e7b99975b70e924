//! Bounded, strict traversal of bucket trees: lookups, in-order iteration and dump.
//!
//! Unlike the checker, which walks as bbolt would and reports, these readers are
//! strict: a page that does not verify (wrong id, wrong type, element bounds, key
//! order, key outside its parent's range, a page met twice, a tree too deep) is
//! an error naming the page. They never return data from a page that failed.

use std::collections::HashSet;

use crate::error::{BoltError, Result};
use crate::file::BoltFile;
use crate::format::{BucketHeader, Node, NodeKind, BUCKET_HEADER_SIZE};
use untorn::unstable::limits::{MAX_BUCKET_DEPTH, MAX_TREE_DEPTH};

/// Where a bucket's tree lives.
#[derive(Debug, Clone)]
pub(crate) enum TreeRoot {
    /// A tree rooted at a page.
    Page(u64),
    /// An inline bucket's single leaf.
    Inline(Node),
}

/// One element yielded by a tree iterator.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub bucket: bool,
}

struct Frame {
    pgid: u64,
    node: Node,
    idx: usize,
    upper: Option<Vec<u8>>,
}

/// Verifies a node's in-page key order and its keys against (lower, upper).
pub(crate) fn verify_node(
    pgid: u64,
    node: &Node,
    lower: Option<&[u8]>,
    upper: Option<&[u8]>,
) -> Result<()> {
    if let Some(i) = node.first_order_violation() {
        return Err(BoltError::Structure {
            page: pgid,
            message: format!("keys not strictly ascending at element {i}"),
        });
    }
    if node.kind == NodeKind::Branch && node.elems.is_empty() {
        return Err(BoltError::Structure {
            page: pgid,
            message: "branch page has no elements".into(),
        });
    }
    let n = node.elems.len();
    if n > 0 {
        let first = node.key(0);
        let last = node.key(n - 1);
        if lower.is_some_and(|lo| first < lo) || upper.is_some_and(|hi| last >= hi) {
            return Err(BoltError::Structure {
                page: pgid,
                message: "keys outside the range given by the parent page".into(),
            });
        }
    }
    Ok(())
}

/// Reads a tree node strictly and verifies it.
pub(crate) fn load(
    file: &BoltFile,
    pgid: u64,
    lower: Option<&[u8]>,
    upper: Option<&[u8]>,
) -> Result<Node> {
    let node = file.read_node(pgid).map_err(|problem| BoltError::Page {
        page: pgid,
        problem,
    })?;
    verify_node(pgid, &node, lower, upper)?;
    Ok(node)
}

/// In-order iterator over one bucket's tree.
pub(crate) struct TreeIter {
    stack: Vec<Frame>,
    pending_root: Option<TreeRoot>,
    failed: bool,
}

impl TreeIter {
    pub(crate) fn new(root: TreeRoot) -> TreeIter {
        TreeIter {
            stack: Vec::new(),
            pending_root: Some(root),
            failed: false,
        }
    }

    /// The next element, reading pages through `file`; `visited` is shared by all
    /// trees of one traversal so that a page reached twice is an error.
    pub(crate) fn next(
        &mut self,
        file: &BoltFile,
        visited: &mut HashSet<u64>,
    ) -> Option<Result<Item>> {
        if self.failed {
            return None;
        }
        let r = self.step(file, visited);
        if matches!(r, Some(Err(_))) {
            self.failed = true;
            self.stack.clear();
        }
        r
    }

    fn step(&mut self, file: &BoltFile, visited: &mut HashSet<u64>) -> Option<Result<Item>> {
        if let Some(root) = self.pending_root.take() {
            match root {
                TreeRoot::Inline(node) => {
                    if let Err(e) = verify_node(0, &node, None, None) {
                        return Some(Err(e));
                    }
                    if node.kind != NodeKind::Leaf {
                        return Some(Err(BoltError::Structure {
                            page: 0,
                            message: "inline bucket is not a leaf".into(),
                        }));
                    }
                    self.stack.push(Frame {
                        pgid: 0,
                        node,
                        idx: 0,
                        upper: None,
                    });
                }
                TreeRoot::Page(pgid) => {
                    if !visited.insert(pgid) {
                        return Some(Err(revisit(pgid)));
                    }
                    match load(file, pgid, None, None) {
                        Ok(node) => self.stack.push(Frame {
                            pgid,
                            node,
                            idx: 0,
                            upper: None,
                        }),
                        Err(e) => return Some(Err(e)),
                    }
                }
            }
        }
        loop {
            let depth = self.stack.len();
            let top = self.stack.last_mut()?;
            let i = top.idx;
            if i >= top.node.elems.len() {
                self.stack.pop();
                continue;
            }
            top.idx += 1;
            match top.node.kind {
                NodeKind::Leaf => {
                    return Some(Ok(Item {
                        key: top.node.key(i).to_vec(),
                        value: top.node.value(i).to_vec(),
                        bucket: top.node.is_bucket(i),
                    }))
                }
                NodeKind::Branch => {
                    let child = top.node.elems.get(i).map(|e| e.pgid).unwrap_or(0);
                    let lower = top.node.key(i).to_vec();
                    let upper = if i + 1 < top.node.elems.len() {
                        Some(top.node.key(i + 1).to_vec())
                    } else {
                        top.upper.clone()
                    };
                    let parent = top.pgid;
                    if depth >= MAX_TREE_DEPTH {
                        return Some(Err(BoltError::Structure {
                            page: parent,
                            message: format!("tree deeper than {MAX_TREE_DEPTH} levels"),
                        }));
                    }
                    if !visited.insert(child) {
                        return Some(Err(revisit(child)));
                    }
                    match load(file, child, Some(&lower), upper.as_deref()) {
                        Ok(node) => self.stack.push(Frame {
                            pgid: child,
                            node,
                            idx: 0,
                            upper,
                        }),
                        Err(e) => return Some(Err(e)),
                    }
                }
            }
        }
    }
}

fn revisit(pgid: u64) -> BoltError {
    BoltError::Structure {
        page: pgid,
        message: "page reached a second time (cycle or page shared by two parents)".into(),
    }
}

/// Decodes a bucket value into its tree root.
pub(crate) fn bucket_root(value: &[u8], path: &str) -> Result<(TreeRoot, u64)> {
    let h = BucketHeader::decode(value).ok_or_else(|| BoltError::BadBucket {
        path: path.to_string(),
        message: format!(
            "value of {} bytes is shorter than a bucket header",
            value.len()
        ),
    })?;
    if h.root != 0 {
        return Ok((TreeRoot::Page(h.root), h.sequence));
    }
    let inline = value.get(BUCKET_HEADER_SIZE..).unwrap_or(&[]).to_vec();
    let node = Node::parse(inline).map_err(|p| BoltError::BadBucket {
        path: path.to_string(),
        message: format!("inline page: {p}"),
    })?;
    Ok((TreeRoot::Inline(node), h.sequence))
}

/// Human form of a bucket path.
pub fn path_display(path: &[Vec<u8>]) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.iter()
        .map(|c| match std::str::from_utf8(c) {
            Ok(s) if s.chars().all(|ch| !ch.is_control() && ch != '/') => s.to_string(),
            _ => format!(
                "0x{}",
                c.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Looks up `key` in a tree: Ok(Some(item)) if present.
pub(crate) fn lookup(file: &BoltFile, root: &TreeRoot, key: &[u8]) -> Result<Option<Item>> {
    let mut node = match root {
        TreeRoot::Inline(n) => {
            verify_node(0, n, None, None)?;
            n.clone()
        }
        TreeRoot::Page(p) => load(file, *p, None, None)?,
    };
    let mut pgid = match root {
        TreeRoot::Inline(_) => 0,
        TreeRoot::Page(p) => *p,
    };
    let mut seen: HashSet<u64> = HashSet::new();
    seen.insert(pgid);
    let mut upper: Option<Vec<u8>> = None;
    for _ in 0..=MAX_TREE_DEPTH {
        match node.kind {
            NodeKind::Leaf => {
                for i in 0..node.elems.len() {
                    if node.key(i) == key {
                        return Ok(Some(Item {
                            key: key.to_vec(),
                            value: node.value(i).to_vec(),
                            bucket: node.is_bucket(i),
                        }));
                    }
                }
                return Ok(None);
            }
            NodeKind::Branch => {
                // Last element whose key is <= key (or the first).
                let n = node.elems.len();
                let mut idx = 0;
                for i in 0..n {
                    if node.key(i) <= key {
                        idx = i;
                    } else {
                        break;
                    }
                }
                let child = node.elems.get(idx).map(|e| e.pgid).unwrap_or(0);
                let lower = node.key(idx).to_vec();
                let next_upper = if idx + 1 < n {
                    Some(node.key(idx + 1).to_vec())
                } else {
                    upper.clone()
                };
                if !seen.insert(child) {
                    return Err(revisit(child));
                }
                let _ = pgid;
                node = load(file, child, Some(&lower), next_upper.as_deref())?;
                pgid = child;
                upper = next_upper;
            }
        }
    }
    Err(BoltError::Structure {
        page: pgid,
        message: format!("tree deeper than {MAX_TREE_DEPTH} levels"),
    })
}

/// Opens the bucket at `path` (empty = the root bucket).
pub(crate) fn open_bucket(file: &BoltFile, path: &[Vec<u8>]) -> Result<(TreeRoot, u64)> {
    let meta = file.meta();
    let mut root = TreeRoot::Page(meta.root);
    let mut seq = meta.sequence;
    if path.len() > MAX_BUCKET_DEPTH {
        return Err(BoltError::BucketNotFound(path_display(path)));
    }
    for (depth, name) in path.iter().enumerate() {
        let here = path_display(path.get(..=depth).unwrap_or(path));
        match lookup(file, &root, name)? {
            None => return Err(BoltError::BucketNotFound(here)),
            Some(item) if !item.bucket => return Err(BoltError::NotABucket(here)),
            Some(item) => {
                let (r, s) = bucket_root(&item.value, &here)?;
                root = r;
                seq = s;
            }
        }
    }
    Ok((root, seq))
}

/// What a dump yields: buckets and pairs, in key order, a bucket before its contents.
pub use untorn::unstable::report::DumpItem;
/// One key/value pair of a dump (the report vocabulary's [`Pair`](untorn::unstable::report::Pair)).
pub use untorn::unstable::report::Pair as Entry;

/// Iterator over every bucket and key of a file (see [`crate::dump`]).
pub struct Dump<'a> {
    file: &'a BoltFile,
    visited: HashSet<u64>,
    stack: Vec<(Vec<Vec<u8>>, TreeIter)>,
    failed: bool,
}

impl<'a> Dump<'a> {
    pub(crate) fn new(file: &'a BoltFile) -> Dump<'a> {
        let root = TreeRoot::Page(file.meta().root);
        Dump {
            file,
            visited: HashSet::new(),
            stack: vec![(Vec::new(), TreeIter::new(root))],
            failed: false,
        }
    }

    /// Only the key/value pairs.
    pub fn pairs(self) -> impl Iterator<Item = Result<Entry>> + 'a {
        self.filter_map(|r| match r {
            Ok(DumpItem::Pair(e)) => Some(Ok(e)),
            Ok(DumpItem::Bucket { .. }) => None,
            Err(e) => Some(Err(e)),
        })
    }
}

impl Iterator for Dump<'_> {
    type Item = Result<DumpItem>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let (path, iter) = self.stack.last_mut()?;
            match iter.next(self.file, &mut self.visited) {
                None => {
                    self.stack.pop();
                }
                Some(Err(e)) => {
                    self.failed = true;
                    return Some(Err(e));
                }
                Some(Ok(item)) if item.bucket => {
                    let mut sub = path.clone();
                    sub.push(item.key);
                    if sub.len() > MAX_BUCKET_DEPTH {
                        self.failed = true;
                        return Some(Err(BoltError::BadBucket {
                            path: path_display(&sub),
                            message: format!("buckets nested deeper than {MAX_BUCKET_DEPTH}"),
                        }));
                    }
                    match bucket_root(&item.value, &path_display(&sub)) {
                        Ok((root, sequence)) => {
                            self.stack.push((sub.clone(), TreeIter::new(root)));
                            return Some(Ok(DumpItem::Bucket {
                                path: sub,
                                sequence,
                            }));
                        }
                        Err(e) => {
                            self.failed = true;
                            return Some(Err(e));
                        }
                    }
                }
                Some(Ok(item)) => {
                    return Some(Ok(DumpItem::Pair(Entry {
                        bucket: path.clone(),
                        key: item.key,
                        value: item.value,
                    })))
                }
            }
        }
    }
}

/// Lists the direct children of a bucket: (name, is_bucket).
pub(crate) fn children(file: &BoltFile, path: &[Vec<u8>]) -> Result<Vec<Item>> {
    let (root, _) = open_bucket(file, path)?;
    let mut it = TreeIter::new(root);
    let mut visited = HashSet::new();
    let mut out = Vec::new();
    while let Some(r) = it.next(file, &mut visited) {
        out.push(r?);
    }
    Ok(out)
}
