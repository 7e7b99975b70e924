//! Builds a fresh bbolt file from sorted contents (bulk-loaded B+trees).
//!
//! Layout of the output: pages 0 and 1 are the metas, page 2 the (empty) freelist
//! when the freelist is synced, then every bucket's tree, children before their
//! parents (a nested bucket's root id must be known before the parent leaf that
//! holds its header is written). Leaves and branches are packed greedily up to
//! `fill_percent` of a page; an element bigger than that gets a multi-page node
//! (overflow). Small buckets without sub-buckets are written inline, as bbolt does,
//! when `inline_buckets` is set.
//!
//! The input is walked with an explicit stack, never recursively.

use std::collections::BTreeMap;
use std::path::Path;
use untorn::unstable::limits::{MAX_BUCKET_DEPTH, MAX_TREE_DEPTH};

use crate::error::{BoltError, Result};
use crate::format::{
    put_bytes, put_u32, put_u64, valid_page_size, Meta, PageHeader, BUCKET_HEADER_SIZE,
    ELEMENT_SIZE, FLAG_BRANCH, FLAG_FREELIST, FLAG_LEAF, FLAG_META, LEAF_FLAG_BUCKET, MAGIC,
    PAGE_HEADER_SIZE, PGID_NO_FREELIST, VERSION,
};

/// A value in a bucket: plain bytes or a nested bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A key/value pair's value.
    Data(Vec<u8>),
    /// A nested bucket.
    Bucket(BucketData),
}

/// A bucket's contents, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketData {
    /// Bucket sequence (`NextSequence`).
    pub sequence: u64,
    /// Keys in order.
    pub entries: BTreeMap<Vec<u8>, Value>,
}

impl BucketData {
    /// The bucket at `path` below this one, created (empty) when missing. A plain
    /// value in the way is replaced by a bucket. (Always `Some`.)
    pub fn bucket_mut(&mut self, path: &[Vec<u8>]) -> Option<&mut BucketData> {
        let mut b = self;
        for name in path {
            let slot = b
                .entries
                .entry(name.clone())
                .or_insert_with(|| Value::Bucket(BucketData::default()));
            if !matches!(slot, Value::Bucket(_)) {
                *slot = Value::Bucket(BucketData::default());
            }
            b = match slot {
                Value::Bucket(inner) => inner,
                Value::Data(_) => return None,
            };
        }
        Some(b)
    }

    /// The bucket at `path` below this one, if there is one.
    pub fn bucket(&self, path: &[Vec<u8>]) -> Option<&BucketData> {
        let mut b = self;
        for name in path {
            match b.entries.get(name) {
                Some(Value::Bucket(inner)) => b = inner,
                _ => return None,
            }
        }
        Some(b)
    }

    /// Counts (buckets below this one, keys below this one).
    pub fn counts(&self) -> (u64, u64) {
        let mut stack = vec![self];
        let (mut buckets, mut keys) = (0u64, 0u64);
        while let Some(b) = stack.pop() {
            for v in b.entries.values() {
                match v {
                    Value::Data(_) => keys += 1,
                    Value::Bucket(inner) => {
                        buckets += 1;
                        stack.push(inner);
                    }
                }
            }
        }
        (buckets, keys)
    }
}

/// Options of the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Page size (power of two, 512..=65536).
    pub page_size: u32,
    /// Write no freelist page (meta freelist = 0xFFFF_FFFF_FFFF_FFFF), as NoFreelistSync does.
    pub no_freelist_sync: bool,
    /// Fraction of a page to fill (0.1..=1.0).
    pub fill_percent: f64,
    /// Txid of the newer meta (the other meta gets txid - 1).
    pub txid: u64,
    /// Write small buckets without sub-buckets inline, as bbolt does.
    pub inline_buckets: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            page_size: 4096,
            no_freelist_sync: false,
            fill_percent: 0.9,
            txid: 2,
            inline_buckets: true,
        }
    }
}

/// What the writer produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Pages in the file (= high-water mark).
    pub pages: u64,
    /// Buckets written (not counting the root bucket).
    pub buckets: u64,
    /// Keys written.
    pub keys: u64,
}

struct Image {
    page_size: usize,
    bytes: Vec<u8>,
}

impl Image {
    fn next_pgid(&self) -> u64 {
        (self.bytes.len() / self.page_size) as u64
    }

    /// Appends a node (leaf or branch) and returns its page id.
    fn push_node(&mut self, flags: u16, elems: &[(&[u8], &[u8], u32, u64)]) -> Result<u64> {
        let id = self.next_pgid();
        let node = encode_node(id, flags, elems)?;
        let pages = node.len().div_ceil(self.page_size).max(1);
        let overflow = u32::try_from(pages - 1)
            .map_err(|_| BoltError::Write("node larger than 2^32 pages".into()))?;
        let mut buf = node;
        buf.resize(pages * self.page_size, 0);
        if !put_u32(&mut buf, 12, overflow) {
            return Err(BoltError::Write("node shorter than its header".into()));
        }
        self.bytes.extend_from_slice(&buf);
        Ok(id)
    }
}

fn node_size(elems: &[(&[u8], &[u8], u32, u64)]) -> usize {
    PAGE_HEADER_SIZE
        + elems
            .iter()
            .map(|(k, v, _, _)| ELEMENT_SIZE + k.len() + v.len())
            .sum::<usize>()
}

/// Encodes a node page (header with id, flags, count; overflow left 0).
pub(crate) fn encode_node(
    id: u64,
    flags: u16,
    elems: &[(&[u8], &[u8], u32, u64)],
) -> Result<Vec<u8>> {
    let count = u16::try_from(elems.len())
        .ok()
        .filter(|&c| c < 0xFFFF)
        .ok_or_else(|| BoltError::Write(format!("{} elements in one node", elems.len())))?;
    let mut buf = vec![0u8; node_size(elems)];
    PageHeader {
        id,
        flags,
        count,
        overflow: 0,
    }
    .encode(&mut buf);
    let mut data = PAGE_HEADER_SIZE + elems.len() * ELEMENT_SIZE;
    for (i, (k, v, leaf_flags, pgid)) in elems.iter().enumerate() {
        let at = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
        let pos = u32::try_from(data - at).map_err(|_| BoltError::Write("node too big".into()))?;
        let ksize = u32::try_from(k.len()).map_err(|_| BoltError::Write("key too big".into()))?;
        let vsize = u32::try_from(v.len()).map_err(|_| BoltError::Write("value too big".into()))?;
        let ok = if flags == FLAG_BRANCH {
            put_u32(&mut buf, at, pos)
                && put_u32(&mut buf, at + 4, ksize)
                && put_u64(&mut buf, at + 8, *pgid)
        } else {
            put_u32(&mut buf, at, *leaf_flags)
                && put_u32(&mut buf, at + 4, pos)
                && put_u32(&mut buf, at + 8, ksize)
                && put_u32(&mut buf, at + 12, vsize)
        };
        let ok = ok && put_bytes(&mut buf, data, k) && put_bytes(&mut buf, data + k.len(), v);
        if !ok {
            return Err(BoltError::Write(
                "internal: node encoding out of range".into(),
            ));
        }
        data += k.len() + v.len();
    }
    debug_assert_eq!(data, buf.len());
    Ok(buf)
}

/// An element to encode: key, value, leaf flags, child page (branch).
type Elem<'a> = (&'a [u8], &'a [u8], u32, u64);

/// Packs `elems` greedily into nodes of at most `limit` bytes (at least
/// `min_per_node` elements each, and one node even when `elems` is empty), writes
/// them, and returns each node's (first key, page id) for the level above.
fn write_level(
    img: &mut Image,
    flags: u16,
    elems: &[Elem<'_>],
    limit: usize,
    min_per_node: usize,
) -> Result<Vec<(Vec<u8>, u64)>> {
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let mut end = start;
        let mut size = PAGE_HEADER_SIZE;
        while let Some((k, v, _, _)) = elems.get(end) {
            let add = ELEMENT_SIZE + k.len() + v.len();
            if end >= start + min_per_node && size + add > limit {
                break;
            }
            size += add;
            end += 1;
        }
        let chunk = elems.get(start..end).unwrap_or(&[]);
        let id = img.push_node(flags, chunk)?;
        let first = chunk.first().map(|e| e.0.to_vec()).unwrap_or_default();
        out.push((first, id));
        start = end;
        if start >= elems.len() {
            return Ok(out);
        }
    }
}

/// Writes one bucket's tree from sorted leaf elements; returns the root page.
fn write_tree(img: &mut Image, elems: &[(Vec<u8>, Vec<u8>, u32)], limit: usize) -> Result<u64> {
    let leaves: Vec<Elem<'_>> = elems
        .iter()
        .map(|(k, v, f)| (k.as_slice(), v.as_slice(), *f, 0))
        .collect();
    let mut level = write_level(img, FLAG_LEAF, &leaves, limit, 1)?;
    // Branch levels until one node remains; at least two children per branch so
    // that every level shrinks.
    let mut depth = 0;
    while level.len() > 1 {
        depth += 1;
        if depth > MAX_TREE_DEPTH {
            return Err(BoltError::Write("tree too deep".into()));
        }
        let refs: Vec<Elem<'_>> = level
            .iter()
            .map(|(k, id)| (k.as_slice(), &[][..], 0, *id))
            .collect();
        level = write_level(img, FLAG_BRANCH, &refs, limit, 2)?;
    }
    level
        .first()
        .map(|(_, id)| *id)
        .ok_or_else(|| BoltError::Write("internal: empty tree".into()))
}

/// Encodes the value stored for a bucket: header and, when inline, its leaf page.
fn bucket_value(
    img: &mut Image,
    elems: &[(Vec<u8>, Vec<u8>, u32)],
    sequence: u64,
    has_sub: bool,
    opts: &WriteOptions,
    limit: usize,
) -> Result<Vec<u8>> {
    let refs: Vec<(&[u8], &[u8], u32, u64)> = elems
        .iter()
        .map(|(k, v, f)| (k.as_slice(), v.as_slice(), *f, 0))
        .collect();
    let inline_size = node_size(&refs);
    let mut out = vec![0u8; BUCKET_HEADER_SIZE];
    if !put_u64(&mut out, 8, sequence) {
        return Err(BoltError::Write("bucket header too short".into()));
    }
    if opts.inline_buckets && !has_sub && inline_size <= opts.page_size as usize / 4 {
        out.extend_from_slice(&encode_node(0, FLAG_LEAF, &refs)?);
    } else {
        let root = write_tree(img, elems, limit)?;
        if !put_u64(&mut out, 0, root) {
            return Err(BoltError::Write("bucket header too short".into()));
        }
    }
    Ok(out)
}

/// Builds a complete bbolt file image in memory.
pub fn build_image(root: &BucketData, opts: &WriteOptions) -> Result<(Vec<u8>, WriteStats)> {
    if !valid_page_size(opts.page_size) {
        return Err(BoltError::Write(format!(
            "invalid page size {}",
            opts.page_size
        )));
    }
    let ps = opts.page_size as usize;
    let fill = if opts.fill_percent.is_finite() {
        opts.fill_percent.clamp(0.1, 1.0)
    } else {
        0.9
    };
    let limit = ((ps as f64) * fill) as usize;
    let mut img = Image {
        page_size: ps,
        bytes: vec![0u8; ps * if opts.no_freelist_sync { 2 } else { 3 }],
    };
    let mut stats = WriteStats::default();

    // Post-order over buckets with an explicit stack.
    struct Frame<'a> {
        bucket: &'a BucketData,
        iter: std::collections::btree_map::Iter<'a, Vec<u8>, Value>,
        elems: Vec<(Vec<u8>, Vec<u8>, u32)>,
        has_sub: bool,
        key: Vec<u8>,
    }
    let mut stack = vec![Frame {
        bucket: root,
        iter: root.entries.iter(),
        elems: Vec::new(),
        has_sub: false,
        key: Vec::new(),
    }];
    let root_pgid;
    loop {
        let Some(top) = stack.last_mut() else {
            return Err(BoltError::Write("internal: empty stack".into()));
        };
        match top.iter.next() {
            Some((k, Value::Data(v))) => {
                stats.keys += 1;
                top.elems.push((k.clone(), v.clone(), 0));
            }
            Some((k, Value::Bucket(b))) => {
                stats.buckets += 1;
                top.has_sub = true;
                if stack.len() > MAX_BUCKET_DEPTH {
                    return Err(BoltError::Write("buckets nested too deeply".into()));
                }
                stack.push(Frame {
                    bucket: b,
                    iter: b.entries.iter(),
                    elems: Vec::new(),
                    has_sub: false,
                    key: k.clone(),
                });
            }
            None => {
                let Some(done) = stack.pop() else {
                    return Err(BoltError::Write("internal: empty stack".into()));
                };
                match stack.last_mut() {
                    Some(parent) => {
                        let v = bucket_value(
                            &mut img,
                            &done.elems,
                            done.bucket.sequence,
                            done.has_sub,
                            opts,
                            limit,
                        )?;
                        parent.elems.push((done.key, v, LEAF_FLAG_BUCKET));
                    }
                    None => {
                        root_pgid = write_tree(&mut img, &done.elems, limit)?;
                        break;
                    }
                }
            }
        }
    }

    let hwm = img.next_pgid();
    stats.pages = hwm;
    if !opts.no_freelist_sync {
        let mut fl = vec![0u8; PAGE_HEADER_SIZE];
        PageHeader {
            id: 2,
            flags: FLAG_FREELIST,
            count: 0,
            overflow: 0,
        }
        .encode(&mut fl);
        if !put_bytes(&mut img.bytes, 2 * ps, &fl) {
            return Err(BoltError::Write("internal: freelist page".into()));
        }
    }
    let txid = opts.txid.max(1);
    for (t, meta_txid) in [(txid, txid), (txid - 1, txid - 1)] {
        let page = (t % 2) as usize;
        let meta = Meta {
            magic: MAGIC,
            version: VERSION,
            page_size: opts.page_size,
            flags: 0,
            root: root_pgid,
            sequence: root.sequence,
            freelist: if opts.no_freelist_sync {
                PGID_NO_FREELIST
            } else {
                2
            },
            pgid: hwm,
            txid: meta_txid,
            checksum: 0,
        }
        .with_checksum();
        let mut head = vec![0u8; PAGE_HEADER_SIZE];
        PageHeader {
            id: page as u64,
            flags: FLAG_META,
            count: 0,
            overflow: 0,
        }
        .encode(&mut head);
        head.extend_from_slice(&meta.encode_raw());
        if !put_bytes(&mut img.bytes, page * ps, &head) {
            return Err(BoltError::Write("internal: meta page".into()));
        }
    }
    Ok((img.bytes, stats))
}

/// Writes a fresh bbolt file at `path` (replacing it) and syncs it.
pub fn write_file(
    path: impl AsRef<Path>,
    root: &BucketData,
    opts: &WriteOptions,
) -> Result<WriteStats> {
    use std::io::Write;
    let path = path.as_ref();
    let (bytes, stats) = build_image(root, opts)?;
    let tmp = path.with_extension("untorn-tmp");
    let mut f = std::fs::File::create(&tmp)
        .map_err(|e| BoltError::io(format!("create {}", tmp.display()), e))?;
    f.write_all(&bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| BoltError::io(format!("write {}", tmp.display()), e))?;
    drop(f);
    std::fs::rename(&tmp, path)
        .map_err(|e| BoltError::io(format!("rename to {}", path.display()), e))?;
    // The rename is durable only once the directory is synced.
    untorn::storage::sync_parent_directory(path)
        .map_err(|e| BoltError::io(format!("sync the directory of {}", path.display()), e))?;
    Ok(stats)
}
