//! The raft log on untorn: openraft's [`RaftLogStorage`].
//!
//! File `log.untorn` holds two buckets:
//!
//! | bucket          | key                        | value                         |
//! |-----------------|----------------------------|-------------------------------|
//! | `raft_log`      | log index, 8 bytes BE      | the entry, JSON               |
//! | `raft_log_meta` | `format`                   | `1`                           |
//! |                 | `vote`                     | the vote, JSON                |
//! | `raft_log_meta` | `committed`                | the committed log id, JSON    |
//! |                 | `last_purged`              | the last purged log id, JSON  |
//!
//! Every write goes through one writer thread that owns the commit path. It takes every
//! operation queued since its last commit, applies them **in order** in one write
//! transaction and commits once (one journal fsync with untorn's default
//! `Durability::Immediate`). Only then does it acknowledge them: an `append`'s
//! `LogFlushed` callback is called, and `save_vote`/`truncate`/`purge` return. So appends
//! issued while a commit is in flight share the next fsync (group commit), and write
//! order is the order openraft issued the calls, as `RaftLogStorage` requires.
//!
//! `append` returns as soon as its entries are queued; until their commit they are
//! served to readers from an in-memory overlay (`View::pending`), because openraft
//! requires appended entries to be readable when `append` returns. A truncate hides the
//! committed entries at and after its index from readers at once (`View::hidden_from`).
//!
//! `save_committed` is lazy: it never causes a commit of its own, it rides on the next
//! one (or on the final commit at close). Losing it in a crash is harmless: openraft
//! learns the committed index again from the leader, and the state machine records
//! what it applied in its own commits.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{
    Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftTypeConfig, StorageError, Vote,
};
use tokio::sync::{oneshot, watch};
use untorn::{Database, WriteTx};

use crate::error::{blocking, Inner, OpenError};
use crate::state_machine::GateState;

pub(crate) const LOG_BUCKET: &[u8] = b"raft_log";
pub(crate) const META_BUCKET: &[u8] = b"raft_log_meta";
const KEY_FORMAT: &[u8] = b"format";
const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_PURGED: &[u8] = b"last_purged";
const FORMAT_VERSION: &[u8] = b"1";

/// Operations taken into one commit at most (bounds the transaction's memory with
/// openraft's own bound on entries per append).
const BATCH_OPS_MAX: usize = 256;

type NodeIdOf<C> = <C as RaftTypeConfig>::NodeId;

/// The raft log and vote of one node, stored in an untorn database.
///
/// Cloning is cheap and shares the store (the clone is also the `LogReader`). The
/// writer thread and the database close when the last clone is dropped.
pub struct LogStore<C: RaftTypeConfig<Entry = Entry<C>>> {
    shared: Arc<Shared<C>>,
}

impl<C: RaftTypeConfig<Entry = Entry<C>>> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C: RaftTypeConfig<Entry = Entry<C>>> Debug for LogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

struct Shared<C: RaftTypeConfig<Entry = Entry<C>>> {
    db: Arc<Database>,
    view: Arc<Mutex<View<C>>>,
    ops: Option<mpsc::Sender<Op<C>>>,
    writer: Option<JoinHandle<()>>,
    commits: Arc<AtomicU64>,
    gate: Option<watch::Receiver<GateState>>,
}

impl<C: RaftTypeConfig<Entry = Entry<C>>> Drop for Shared<C> {
    fn drop(&mut self) {
        // Closing the queue ends the writer after it has committed everything queued.
        drop(self.ops.take());
        if let Some(w) = self.writer.take() {
            if w.join().is_err() {
                tracing::error!("the log writer thread panicked");
            }
        }
    }
}

/// What readers see: the logical state of the log, ahead of the last commit.
struct View<C: RaftTypeConfig<Entry = Entry<C>>> {
    /// Appended entries not yet committed, with the sequence number of their op.
    pending: BTreeMap<u64, (u64, Arc<Vec<u8>>)>,
    /// Committed entries at and after this index are truncated by the op with this
    /// sequence number, which is not committed yet.
    hidden_from: Option<(u64, u64)>,
    last_purged: Option<LogId<NodeIdOf<C>>>,
    last_log: Option<LogId<NodeIdOf<C>>>,
    vote: Option<Vote<NodeIdOf<C>>>,
    committed: Option<LogId<NodeIdOf<C>>>,
    next_seq: u64,
}

enum OpKind {
    Append(Vec<(u64, Arc<Vec<u8>>)>),
    Truncate(u64),
    Purge { upto: u64, record: Vec<u8> },
    Vote(Vec<u8>),
    Committed(Vec<u8>),
}

enum Done<C: RaftTypeConfig> {
    Flushed(LogFlushed<C>),
    Reply(oneshot::Sender<Result<(), String>>),
    Nothing,
}

struct Op<C: RaftTypeConfig> {
    seq: u64,
    kind: OpKind,
    done: Done<C>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn key_index(key: &[u8]) -> Result<u64, Inner> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| Inner::Invalid(format!("log key of {} bytes, expected 8", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    /// Opens (or creates) the log database at `path` (untorn's defaults: one fsync per
    /// commit).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        let db = Database::builder()
            .cache_size_bytes(64 << 20)
            .create(path.as_ref())?;
        Self::with_database(db)
    }

    /// Uses an already open database (it must be used by nothing else).
    pub fn with_database(db: Database) -> Result<Self, OpenError> {
        Self::with_database_and_gate(db, None)
    }

    /// Opens the log linked to its state machine (see `GateState`).
    pub(crate) fn open_gated(
        path: &Path,
        gate: watch::Receiver<GateState>,
    ) -> Result<Self, OpenError> {
        let db = Database::builder()
            .cache_size_bytes(64 << 20)
            .create(path)?;
        Self::with_database_and_gate(db, Some(gate))
    }

    fn with_database_and_gate(
        db: Database,
        gate: Option<watch::Receiver<GateState>>,
    ) -> Result<Self, OpenError> {
        let db = Arc::new(db);
        let view = load_view::<C>(&db)?;
        let view = Arc::new(Mutex::new(view));
        let (tx, rx) = mpsc::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let writer = {
            let db = Arc::clone(&db);
            let view = Arc::clone(&view);
            let commits = Arc::clone(&commits);
            std::thread::Builder::new()
                .name("untorn-raft-log".into())
                .spawn(move || writer_loop(&db, &rx, &view, &commits))?
        };
        Ok(LogStore {
            shared: Arc::new(Shared {
                db,
                view,
                ops: Some(tx),
                writer: Some(writer),
                commits,
                gate,
            }),
        })
    }

    /// Commits made by the writer so far (each is one journal sync): tests use it to
    /// see group commit at work.
    pub fn commit_count(&self) -> u64 {
        self.shared.commits.load(Ordering::Acquire)
    }

    /// The underlying database (for inspection: `check`, `info`).
    pub fn database(&self) -> &Database {
        &self.shared.db
    }

    fn send(&self, view: &mut View<C>, kind: OpKind, done: Done<C>) -> Result<(), Inner> {
        let seq = view.next_seq;
        view.next_seq += 1;
        let sender = self
            .shared
            .ops
            .as_ref()
            .ok_or_else(|| Inner::Invalid("log store is closed".into()))?;
        sender
            .send(Op { seq, kind, done })
            .map_err(|_| Inner::Invalid("log writer has stopped".into()))
    }

    async fn wait(rx: oneshot::Receiver<Result<(), String>>) -> Result<(), Inner> {
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Inner::Invalid(e)),
            Err(_) => Err(Inner::Invalid("log writer dropped the request".into())),
        }
    }

    /// Reads entries with indexes in `[start, end)`, as the log logically is now.
    async fn read_range(&self, start: u64, end: u64) -> Result<Vec<Entry<C>>, Inner> {
        let db = Arc::clone(&self.shared.db);
        let view = Arc::clone(&self.shared.view);
        blocking(move || read_range_blocking(&db, &view, start, end)).await
    }
}

fn read_range_blocking<C: RaftTypeConfig<Entry = Entry<C>>>(
    db: &Database,
    view: &Mutex<View<C>>,
    start: u64,
    end: u64,
) -> Result<Vec<Entry<C>>, Inner> {
    if start >= end {
        return Ok(Vec::new());
    }
    // The snapshot is taken under the view lock: the writer removes committed entries
    // from the overlay under the same lock, after its commit is published, so an entry
    // is always in the overlay or in this snapshot (or both, with the same content).
    let (overlay, hidden_from, purged, tx) = {
        let v = lock(view);
        let overlay: BTreeMap<u64, Arc<Vec<u8>>> = v
            .pending
            .range(start..end)
            .map(|(i, (_, e))| (*i, Arc::clone(e)))
            .collect();
        let tx = db.begin_read()?;
        (
            overlay,
            v.hidden_from.map(|(i, _)| i),
            v.last_purged.as_ref().map(|l| l.index),
            tx,
        )
    };
    let first = match purged {
        Some(p) => start.max(p.saturating_add(1)),
        None => start,
    };
    let last = hidden_from.map_or(end, |h| end.min(h));
    let mut out = BTreeMap::new();
    for (i, bytes) in overlay {
        if purged.is_none_or(|p| i > p) {
            out.insert(i, decode_entry::<C>(i, &bytes)?);
        }
    }
    if first < last {
        if let Some(log) = tx.bucket(LOG_BUCKET)? {
            let lo = index_key(first);
            let hi = index_key(last);
            for item in log.range(&lo[..]..&hi[..])? {
                let (k, v) = item?;
                let i = key_index(&k)?;
                if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(i) {
                    slot.insert(decode_entry::<C>(i, &v)?);
                }
            }
        }
    }
    Ok(out.into_values().collect())
}

fn decode_entry<C: RaftTypeConfig<Entry = Entry<C>>>(
    index: u64,
    bytes: &[u8],
) -> Result<Entry<C>, Inner> {
    let e: Entry<C> = serde_json::from_slice(bytes)?;
    if e.log_id.index != index {
        return Err(Inner::Invalid(format!(
            "log entry under index {index} says index {}",
            e.log_id.index
        )));
    }
    Ok(e)
}

fn get_json<T: serde::de::DeserializeOwned>(
    b: &untorn::Bucket<'_>,
    key: &[u8],
) -> Result<Option<T>, Inner> {
    match b.get(key)? {
        Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
        None => Ok(None),
    }
}

fn load_view<C: RaftTypeConfig<Entry = Entry<C>>>(db: &Database) -> Result<View<C>, Inner> {
    db.update(|tx| -> untorn::Result<()> {
        let meta = tx.create_bucket_if_not_exists(META_BUCKET)?;
        if meta.get(KEY_FORMAT)?.is_none() {
            meta.put(KEY_FORMAT, FORMAT_VERSION)?;
        }
        tx.create_bucket_if_not_exists(LOG_BUCKET)?;
        Ok(())
    })?;
    let tx = db.begin_read()?;
    let meta = tx
        .bucket(META_BUCKET)?
        .ok_or_else(|| Inner::Invalid("meta bucket missing".into()))?;
    let format = meta.get(KEY_FORMAT)?;
    if format.as_deref() != Some(FORMAT_VERSION) {
        return Err(Inner::Invalid(format!(
            "log format {:?}, this build reads {:?}",
            format.map(|f| String::from_utf8_lossy(&f).into_owned()),
            String::from_utf8_lossy(FORMAT_VERSION)
        )));
    }
    let vote = get_json(&meta, KEY_VOTE)?;
    let committed = get_json(&meta, KEY_COMMITTED)?;
    let last_purged: Option<LogId<NodeIdOf<C>>> = get_json(&meta, KEY_PURGED)?;
    let log = tx
        .bucket(LOG_BUCKET)?
        .ok_or_else(|| Inner::Invalid("log bucket missing".into()))?;
    let last_entry = match log.cursor().last()? {
        Some((k, untorn::Entry::Value(v))) => {
            let e: Entry<C> = serde_json::from_slice(&v)?;
            if e.log_id.index != key_index(&k)? {
                return Err(Inner::Invalid(
                    "last log entry is stored under another index".into(),
                ));
            }
            Some(e.log_id)
        }
        Some((_, untorn::Entry::Bucket)) => {
            return Err(Inner::Invalid("a bucket inside the log bucket".into()))
        }
        None => None,
    };
    let last_log = match (&last_entry, &last_purged) {
        (Some(l), Some(p)) if l.index <= p.index => last_purged.clone(),
        (Some(_), _) => last_entry,
        (None, _) => last_purged.clone(),
    };
    Ok(View {
        pending: BTreeMap::new(),
        hidden_from: None,
        last_purged,
        last_log,
        vote,
        committed,
        next_seq: 1,
    })
}

/// Applies one op to the write transaction.
fn apply_op(tx: &WriteTx<'_>, kind: &OpKind) -> untorn::Result<()> {
    let log = tx.create_bucket_if_not_exists(LOG_BUCKET)?;
    let meta = tx.create_bucket_if_not_exists(META_BUCKET)?;
    match kind {
        OpKind::Append(entries) => {
            for (index, bytes) in entries {
                log.put(index_key(*index), bytes.as_slice())?;
            }
        }
        OpKind::Truncate(since) => {
            let mut c = log.cursor();
            let mut at = c.seek(index_key(*since))?;
            while at.is_some() {
                c.delete()?;
                at = c.next()?;
            }
        }
        OpKind::Purge { upto, record } => {
            let mut c = log.cursor();
            let mut at = c.first()?;
            while let Some((k, _)) = at {
                if k.as_slice() > index_key(*upto).as_slice() {
                    break;
                }
                c.delete()?;
                at = c.next()?;
            }
            meta.put(KEY_PURGED, record)?;
        }
        OpKind::Vote(record) => meta.put(KEY_VOTE, record)?,
        OpKind::Committed(record) => meta.put(KEY_COMMITTED, record)?,
    }
    Ok(())
}

fn writer_loop<C: RaftTypeConfig<Entry = Entry<C>>>(
    db: &Database,
    rx: &mpsc::Receiver<Op<C>>,
    view: &Mutex<View<C>>,
    commits: &AtomicU64,
) {
    // A `save_committed` that has not ridden on a commit yet.
    let mut lazy: Option<Op<C>> = None;
    let mut closing = false;
    while !closing {
        let mut batch: Vec<Op<C>> = match rx.recv() {
            Ok(op) => vec![op],
            Err(_) => {
                // Queue closed: write the lazy record, then stop.
                closing = true;
                Vec::new()
            }
        };
        while batch.len() < BATCH_OPS_MAX {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let only_lazy = batch
            .iter()
            .all(|op| matches!(op.kind, OpKind::Committed(_)));
        if only_lazy && !closing {
            lazy = batch.pop().or(lazy);
            continue;
        }
        if let Some(l) = lazy.take() {
            batch.insert(0, l);
        }
        if batch.is_empty() {
            break;
        }
        let max_seq = batch.iter().map(|op| op.seq).max().unwrap_or(0);
        let result = (|| {
            let tx = db.begin_write()?;
            for op in &batch {
                apply_op(&tx, &op.kind)?;
            }
            tx.commit()
        })();
        if result.is_ok() {
            commits.fetch_add(1, Ordering::AcqRel);
            let mut v = lock(view);
            v.pending.retain(|_, (seq, _)| *seq > max_seq);
            if v.hidden_from.is_some_and(|(_, seq)| seq <= max_seq) {
                v.hidden_from = None;
            }
        }
        for op in batch {
            let r = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
            match op.done {
                Done::Flushed(cb) => cb.log_io_completed(r.map_err(std::io::Error::other)),
                Done::Reply(tx) => {
                    let _ = tx.send(r);
                }
                Done::Nothing => {}
            }
        }
        if let Err(e) = result {
            tracing::error!("log commit failed: {e}; the log store stops accepting writes");
            // untorn has poisoned the handle; every later op fails the same way.
        }
    }
}

fn range_to_bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.saturating_add(1),
        Bound::Excluded(e) => *e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

fn read_err<NID: openraft::NodeId>(e: Inner) -> StorageError<NID> {
    e.into_storage(ErrorSubject::Logs, ErrorVerb::Read)
}

fn write_err<NID: openraft::NodeId>(e: Inner) -> StorageError<NID> {
    e.into_storage(ErrorSubject::Logs, ErrorVerb::Write)
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>, StorageError<C::NodeId>> {
        let (start, end) = range_to_bounds(&range);
        self.read_range(start, end).await.map_err(read_err)
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    type LogReader = LogStore<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let v = lock(&self.shared.view);
        Ok(LogState {
            last_purged_log_id: v.last_purged.clone(),
            last_log_id: v.last_log.clone(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let record = serde_json::to_vec(vote)
            .map_err(|e| Inner::from(e).into_storage(ErrorSubject::Vote, ErrorVerb::Write))?;
        let (tx, rx) = oneshot::channel();
        {
            let mut v = lock(&self.shared.view);
            v.vote = Some(vote.clone());
            self.send(&mut v, OpKind::Vote(record), Done::Reply(tx))
                .map_err(|e| e.into_storage(ErrorSubject::Vote, ErrorVerb::Write))?;
        }
        Self::wait(rx)
            .await
            .map_err(|e| e.into_storage(ErrorSubject::Vote, ErrorVerb::Write))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(lock(&self.shared.view).vote.clone())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        let record = serde_json::to_vec(&committed).map_err(|e| write_err(e.into()))?;
        let mut v = lock(&self.shared.view);
        v.committed = committed;
        self.send(&mut v, OpKind::Committed(record), Done::Nothing)
            .map_err(write_err)
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(lock(&self.shared.view).committed.clone())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = Entry<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<C>> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id.clone()) else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        let mut records = Vec::with_capacity(entries.len());
        for e in &entries {
            records.push((
                e.log_id.index,
                Arc::new(serde_json::to_vec(e).map_err(|e| write_err(e.into()))?),
            ));
        }
        let mut v = lock(&self.shared.view);
        let seq = v.next_seq;
        for (index, bytes) in &records {
            v.pending.insert(*index, (seq, Arc::clone(bytes)));
        }
        // openraft appends right after the last entry (it truncates before it overwrites);
        // the last log id is the highest index present either way.
        if v.last_log.as_ref().is_none_or(|l| l.index <= last.index) {
            v.last_log = Some(last);
        }
        self.send(&mut v, OpKind::Append(records), Done::Flushed(callback))
            .map_err(write_err)
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let since = log_id.index;
        let prev = match since.checked_sub(1) {
            Some(p) => self.read_range(p, since).await.map_err(read_err)?.pop(),
            None => None,
        };
        let (tx, rx) = oneshot::channel();
        {
            let mut v = lock(&self.shared.view);
            let seq = v.next_seq;
            drop(v.pending.split_off(&since));
            let hidden = v.hidden_from.map_or(since, |(i, _)| i.min(since));
            v.hidden_from = Some((hidden, seq));
            v.last_log = prev.map(|e| e.log_id).or_else(|| v.last_purged.clone());
            self.send(&mut v, OpKind::Truncate(since), Done::Reply(tx))
                .map_err(write_err)?;
        }
        Self::wait(rx).await.map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        if let Some(gate) = &self.shared.gate {
            // Never make a purge durable ahead of the snapshot that covers it.
            let upto = Some(log_id.index);
            let mut rx = gate.clone();
            let g = *rx
                .wait_for(|g| g.covered >= upto || !g.receiving)
                .await
                .map_err(|e| write_err(Inner::Invalid(format!("state machine gone: {e}"))))?;
            if g.covered < upto && g.failed {
                return Err(write_err(Inner::Invalid(format!(
                    "not purging up to {}: the snapshot install that covers it failed",
                    log_id.index
                ))));
            }
        }
        let record = serde_json::to_vec(&log_id).map_err(|e| write_err(e.into()))?;
        let (tx, rx) = oneshot::channel();
        {
            let mut v = lock(&self.shared.view);
            let upto = log_id.index;
            v.pending.retain(|i, _| *i > upto);
            if v.last_log.as_ref().is_none_or(|l| l.index < upto) {
                v.last_log = Some(log_id.clone());
            }
            v.last_purged = Some(log_id);
            self.send(&mut v, OpKind::Purge { upto, record }, Done::Reply(tx))
                .map_err(write_err)?;
        }
        Self::wait(rx).await.map_err(write_err)
    }
}
