//! Candidates: every version of every key the live walk and the refill find, resolved
//! to one winner per (bucket, key) — the highest rank — without holding them all in
//! memory.
//!
//! Candidates collect in memory until they reach the budget's sort share; then they are
//! sorted by (tree, key, rank descending), reduced to one per key, and written as a run
//! to a temporary file. At the end, the runs are merged (in passes of at most `fan_in`
//! runs when there are more than the budget has run buffers for) and the winners written
//! once more, tree after tree, so that the emission can read any tree's winners in key
//! order. When nothing spilled, the winners stay in memory and no file is created. Keeping
//! the highest rank is associative, so merging in passes and reducing each run on its
//! own choose the same winner as one big sort.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::ops::Range;
use std::path::PathBuf;

use super::options::{SalvageOptions, CANDIDATE_OVERHEAD_BYTES};
use super::scan::us;
use crate::error::{Error, Result};
use crate::format::{SpillRecord, SPILL_LEN_SIZE};
use crate::storage::{Storage, TempFile};

/// The order runs are sorted in: tree, key, then the winner (highest rank) first.
fn order(a: &SpillRecord, b: &SpillRecord) -> Ordering {
    (a.tree, &a.key, Reverse(a.rank)).cmp(&(b.tree, &b.key, Reverse(b.rank)))
}

fn same_key(a: &SpillRecord, b: &SpillRecord) -> bool {
    a.tree == b.tree && a.key == b.key
}

/// Sorts `recs` and keeps the winner of each key.
fn sort_reduce(recs: &mut Vec<SpillRecord>) {
    recs.sort_unstable_by(order);
    recs.dedup_by(|later, first| same_key(later, first));
}

fn spill_io(e: std::io::Error) -> Error {
    Error::from_io(e)
}

/// Candidates being collected.
pub(super) struct Candidates {
    mem: Vec<SpillRecord>,
    mem_bytes: u64,
    temp_dir: PathBuf,
    record_max: u64,
    spill: Option<Spill>,
}

/// The temporary file and the runs written to it.
pub(super) struct Spill {
    file: TempFile,
    len: u64,
    runs: Vec<Range<u64>>,
}

impl Spill {
    fn writer(&self, cap: usize) -> RunWriter<'_> {
        RunWriter {
            file: self.file.storage(),
            start: self.len,
            at: self.len,
            buf: Vec::with_capacity(cap),
            cap,
        }
    }
}

/// Appends encoded records to the spill file through a bounded buffer.
struct RunWriter<'f> {
    file: &'f dyn Storage,
    start: u64,
    at: u64,
    buf: Vec<u8>,
    cap: usize,
}

impl RunWriter<'_> {
    fn push(&mut self, rec: &SpillRecord) -> Result<()> {
        if !rec.encode(&mut self.buf) {
            return Err(Error::Internal("salvage candidate too large to spill"));
        }
        if self.buf.len() >= self.cap {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.file.write_at(self.at, &self.buf).map_err(spill_io)?;
        self.at += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Flushes; the byte range written.
    fn finish(mut self) -> Result<Range<u64>> {
        self.flush()?;
        Ok(self.start..self.at)
    }
}

/// Reads records of one run back through a bounded buffer.
struct RunReader<'f> {
    file: &'f dyn Storage,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    at: usize,
    cap: usize,
}

impl<'f> RunReader<'f> {
    fn new(file: &'f dyn Storage, run: Range<u64>, cap: usize) -> Self {
        RunReader {
            file,
            pos: run.start,
            end: run.end,
            buf: Vec::with_capacity(cap),
            at: 0,
            cap,
        }
    }

    /// Makes `need` bytes available from `at`; `false` at the end of the run.
    fn fill(&mut self, need: usize) -> Result<bool> {
        if self.buf.len() - self.at >= need {
            return Ok(true);
        }
        if need > self.cap {
            return Err(Error::Internal("spilled record larger than its reader"));
        }
        self.buf.drain(..self.at);
        self.at = 0;
        let room = (self.cap - self.buf.len()) as u64;
        let n = us(room.min(self.end - self.pos))?;
        let old = self.buf.len();
        self.buf.resize(old + n, 0);
        let tail = self
            .buf
            .get_mut(old..)
            .ok_or(Error::Internal("run reader buffer shorter than filled"))?;
        self.file.read_at(self.pos, tail).map_err(spill_io)?;
        self.pos += n as u64;
        Ok(self.buf.len() >= need)
    }

    fn next(&mut self) -> Result<Option<SpillRecord>> {
        if !self.fill(SPILL_LEN_SIZE)? {
            return match self.buf.len() == self.at && self.pos == self.end {
                true => Ok(None),
                false => Err(Error::Internal("spilled run ends inside a record")),
            };
        }
        let prefix = self
            .buf
            .get(self.at..)
            .ok_or(Error::Internal("run reader position past its buffer"))?;
        let body = SpillRecord::body_len(prefix)
            .ok_or(Error::Internal("spilled record length does not decode"))?;
        let total = SPILL_LEN_SIZE + body;
        if !self.fill(total)? {
            return Err(Error::Internal("spilled run ends inside a record"));
        }
        let rec = self
            .buf
            .get(self.at + SPILL_LEN_SIZE..self.at + total)
            .and_then(SpillRecord::decode_body)
            .ok_or(Error::Internal("spilled record does not decode"))?;
        self.at += total;
        Ok(Some(rec))
    }
}

/// A run's next record, ordered for a min-heap.
struct Head {
    rec: SpillRecord,
    run: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        order(&other.rec, &self.rec).then(other.run.cmp(&self.run))
    }
}

/// Merges `runs`, passing the winner of each key to `out` in order.
fn merge(
    file: &dyn Storage,
    runs: &[Range<u64>],
    cap: usize,
    mut out: impl FnMut(SpillRecord) -> Result<()>,
) -> Result<()> {
    let mut readers: Vec<RunReader<'_>> = runs
        .iter()
        .map(|r| RunReader::new(file, r.clone(), cap))
        .collect();
    let mut heap = BinaryHeap::with_capacity(readers.len());
    for (run, r) in readers.iter_mut().enumerate() {
        if let Some(rec) = r.next()? {
            heap.push(Head { rec, run });
        }
    }
    let mut last: Option<(u64, Vec<u8>)> = None;
    while let Some(Head { rec, run }) = heap.pop() {
        if let Some(next) = readers
            .get_mut(run)
            .ok_or(Error::Internal("merge run index out of range"))?
            .next()?
        {
            heap.push(Head { rec: next, run });
        }
        if last
            .as_ref()
            .is_some_and(|(t, k)| *t == rec.tree && *k == rec.key)
        {
            continue;
        }
        last = Some((rec.tree, rec.key.clone()));
        out(rec)?;
    }
    Ok(())
}

impl Candidates {
    pub fn new(temp_dir: Option<PathBuf>, record_max: u64) -> Self {
        Candidates {
            mem: Vec::new(),
            mem_bytes: 0,
            temp_dir: temp_dir.unwrap_or_else(std::env::temp_dir),
            record_max,
            spill: None,
        }
    }

    /// Adds a candidate, spilling a run first when it would take the candidates in
    /// memory past `limit` bytes.
    pub fn push(&mut self, rec: SpillRecord, limit: u64) -> Result<()> {
        let cost = rec.encoded_len() as u64 + CANDIDATE_OVERHEAD_BYTES;
        if self.mem_bytes + cost > limit && !self.mem.is_empty() {
            self.spill_run(limit)?;
        }
        self.mem_bytes += cost;
        self.mem.push(rec);
        Ok(())
    }

    /// A run writer's buffer for a sort share of `limit` bytes.
    fn buffer_bytes(&self, limit: u64) -> Result<usize> {
        us((limit / 16).clamp(self.record_max, 1 << 20))
    }

    fn spill_run(&mut self, limit: u64) -> Result<()> {
        let mut recs = std::mem::take(&mut self.mem);
        self.mem_bytes = 0;
        sort_reduce(&mut recs);
        // The writer's buffer comes out of the share the records held: encode and drop
        // them as they go.
        let cap = self.buffer_bytes(limit)?;
        if self.spill.is_none() {
            let file = TempFile::create_in(&self.temp_dir, "salvage").map_err(|e| Error::File {
                path: self.temp_dir.clone(),
                source: e,
            })?;
            self.spill = Some(Spill {
                file,
                len: 0,
                runs: Vec::new(),
            });
        }
        let spill = self
            .spill
            .as_mut()
            .ok_or(Error::Internal("spill file missing after its creation"))?;
        let mut w = spill.writer(cap);
        for rec in recs {
            w.push(&rec)?;
        }
        let run = w.finish()?;
        spill.len = run.end;
        spill.runs.push(run);
        Ok(())
    }

    /// Resolves every key to its winner. `limit` is the memory the merge may use for run
    /// buffers; `on_winner` sees each winner once, in (tree, key) order.
    pub fn finish(
        mut self,
        limit: u64,
        opts: &mut SalvageOptions<'_>,
        mut on_winner: impl FnMut(&SpillRecord) -> Result<()>,
    ) -> Result<Winners> {
        if self.spill.is_none() {
            let mut recs = std::mem::take(&mut self.mem);
            sort_reduce(&mut recs);
            let mut by_tree: BTreeMap<u64, Range<usize>> = BTreeMap::new();
            for (i, rec) in recs.iter().enumerate() {
                on_winner(rec)?;
                by_tree.entry(rec.tree).or_insert(i..i).end = i + 1;
            }
            return Ok(Winners::Memory { recs, by_tree });
        }
        if !self.mem.is_empty() {
            self.spill_run(limit)?;
        }
        let cap = self.buffer_bytes(limit)?;
        // Run readers and one writer fit in the merge's share.
        let fan_in = (us(limit)? / cap).saturating_sub(1).max(2);
        let mut spill = self
            .spill
            .take()
            .ok_or(Error::Internal("spill file missing at the merge"))?;
        let total = spill.runs.len() as u64;
        let mut merged = 0u64;
        while spill.runs.len() > fan_in {
            opts.report("merge", merged, total)?;
            let group: Vec<Range<u64>> = spill.runs.drain(..fan_in).collect();
            let mut w = spill.writer(cap);
            merge(spill.file.storage(), &group, cap, |rec| w.push(&rec))?;
            let run = w.finish()?;
            spill.len = run.end;
            spill.runs.push(run);
            merged += group.len() as u64;
        }
        opts.report("merge", merged, total)?;
        let runs = std::mem::take(&mut spill.runs);
        let mut by_tree: BTreeMap<u64, Range<u64>> = BTreeMap::new();
        let mut w = spill.writer(cap);
        merge(spill.file.storage(), &runs, cap, |rec| {
            on_winner(&rec)?;
            let start = w.at + w.buf.len() as u64;
            w.push(&rec)?;
            let end = w.at + w.buf.len() as u64;
            by_tree.entry(rec.tree).or_insert(start..start).end = end;
            Ok(())
        })?;
        let region = w.finish()?;
        spill.len = region.end;
        Ok(Winners::File {
            spill,
            by_tree,
            cap,
        })
    }
}

/// One winner per key, readable tree by tree in key order.
pub(super) enum Winners {
    /// Nothing spilled: the winners, sorted, and each tree's slice of them.
    Memory {
        recs: Vec<SpillRecord>,
        by_tree: BTreeMap<u64, Range<usize>>,
    },
    /// Spilled: each tree's byte range of the winners region of the temporary file.
    File {
        spill: Spill,
        by_tree: BTreeMap<u64, Range<u64>>,
        cap: usize,
    },
}

impl Winners {
    /// Passes the winners of `tree` to `f`, in key order.
    pub fn for_each<E: From<Error>>(
        &self,
        tree: u64,
        mut f: impl FnMut(&SpillRecord) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        match self {
            Winners::Memory { recs, by_tree } => {
                let Some(r) = by_tree.get(&tree) else {
                    return Ok(());
                };
                let slice = recs
                    .get(r.clone())
                    .ok_or(Error::Internal("winners range outside the winners"))?;
                for rec in slice {
                    f(rec)?;
                }
            }
            Winners::File {
                spill,
                by_tree,
                cap,
            } => {
                let Some(r) = by_tree.get(&tree) else {
                    return Ok(());
                };
                let mut reader = RunReader::new(spill.file.storage(), r.clone(), *cap);
                while let Some(rec) = reader.next()? {
                    f(&rec)?;
                }
            }
        }
        Ok(())
    }
}
