//! The state machine on untorn: openraft's [`RaftStateMachine`], and its snapshots.
//!
//! File `sm.untorn` holds the application's data in bucket `data.<gen>` and, in bucket
//! `raft_sm`:
//!
//! | key          | value                                                          |
//! |--------------|----------------------------------------------------------------|
//! | `format`     | `1`                                                            |
//! | `applied`    | last applied log id, JSON                                      |
//! | `membership` | last applied membership (`StoredMembership`), JSON             |
//! | `data_gen`   | `gen` of the live data bucket, u64 BE                          |
//! | `snapshot`   | the current snapshot: its file name and `SnapshotMeta`, JSON   |
//!
//! **Apply.** One write transaction per `apply` call: every entry's effect, the last
//! applied log id and the membership are in the same commit, so after a crash the state
//! machine is exactly "every entry up to `applied`" — never one applied twice, never one
//! skipped; openraft re-applies from `applied + 1`.
//!
//! **Build a snapshot.** From one untorn read transaction (a consistent snapshot that
//! does not block `apply`), streamed record by record into `building-*`, fsynced,
//! renamed to `snap-*`, directory fsynced; then a small commit points `snapshot` at it
//! (only if it is newer than the current one) and the old file is deleted.
//!
//! **Install a snapshot.** The received stream is read once: each record is loaded into
//! a fresh bucket `data.<gen+1>` in commits of bounded size while every byte is copied
//! to `installing-*` and checksummed. Only when the trailer verified: the copy is
//! fsynced and renamed to `snap-*` (directory fsynced), then **one commit** switches
//! `data_gen`, `applied`, `membership` and `snapshot` and deletes the old data bucket.
//! A crash before that commit leaves the old state machine untouched (the partial
//! bucket and files are removed at the next open); after it, the new one.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftTypeConfig, SnapshotMeta,
    StorageError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use untorn::{Bucket, BucketMut, Database, ReadTx, WriteTx};

use crate::error::{blocking, Inner, OpenError};
use crate::snapshot::{Record, SnapReader, SnapWriter};

const META_BUCKET: &[u8] = b"raft_sm";
const KEY_FORMAT: &[u8] = b"format";
const KEY_APPLIED: &[u8] = b"applied";
const KEY_MEMBERSHIP: &[u8] = b"membership";
const KEY_DATA_GEN: &[u8] = b"data_gen";
const KEY_SNAPSHOT: &[u8] = b"snapshot";
const FORMAT_VERSION: &[u8] = b"1";
const DATA_PREFIX: &str = "data.";

/// Default bytes of snapshot records loaded per commit while installing.
pub const INSTALL_CHUNK_BYTES_DEFAULT: usize = 4 << 20;

type NodeIdOf<C> = <C as RaftTypeConfig>::NodeId;
type NodeOf<C> = <C as RaftTypeConfig>::Node;
type Meta<C> = SnapshotMeta<NodeIdOf<C>, NodeOf<C>>;

/// The application: what a committed request does to the data.
///
/// `apply` runs inside the apply batch's write transaction, on the application's bucket
/// (`data`, which may hold nested buckets: snapshots carry them). It must be
/// deterministic — every node applies the same entries — and must not commit or abort.
/// An `Err` fails the whole batch (openraft then stops the node): put application-level
/// refusals in the response instead.
pub trait Apply<C: RaftTypeConfig>: Send + Sync + 'static {
    /// Applies the entry `log_id`: `request` is `None` for blank and membership entries.
    fn apply(
        &self,
        data: &BucketMut<'_>,
        log_id: &LogId<C::NodeId>,
        request: Option<&C::D>,
    ) -> untorn::Result<C::R>;
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct SnapshotPointer<C: RaftTypeConfig> {
    file: String,
    meta: Meta<C>,
}

/// What the log store must know before it purges: which log prefix the durable
/// snapshot covers, and whether a snapshot is being received or installed.
///
/// openraft 0.9 issues the log purge that follows a snapshot install right after
/// handing the install to the state machine task, without waiting for it. Were that
/// purge durable first and the node killed before the install's switch commit, the node
/// would restart with its log purged past its snapshot, an invalid raft state. So while
/// a snapshot is being received or installed, [`crate::LogStore`] holds back a purge
/// beyond the covered prefix until the switch commit is durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GateState {
    /// Last log index the current (durable) snapshot covers.
    pub(crate) covered: Option<u64>,
    /// A snapshot is being received or installed.
    pub(crate) receiving: bool,
    /// The last install failed (a held-back purge must not proceed).
    pub(crate) failed: bool,
}

/// The replicated state machine of one node: an untorn database plus a snapshot folder.
pub struct StateMachineStore<C, A>
where
    C: RaftTypeConfig<Entry = Entry<C>, SnapshotData = tokio::fs::File>,
    A: Apply<C>,
{
    db: Arc<Database>,
    dir: Arc<PathBuf>,
    app: Arc<A>,
    install_chunk_bytes: usize,
    gate: Arc<watch::Sender<GateState>>,
    _c: std::marker::PhantomData<C>,
}

impl<C, A> std::fmt::Debug for StateMachineStore<C, A>
where
    C: RaftTypeConfig<Entry = Entry<C>, SnapshotData = tokio::fs::File>,
    A: Apply<C>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachineStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Builds snapshots from a read transaction of the state machine database.
pub struct SnapshotBuilder<C, A>
where
    C: RaftTypeConfig<Entry = Entry<C>, SnapshotData = tokio::fs::File>,
    A: Apply<C>,
{
    db: Arc<Database>,
    dir: Arc<PathBuf>,
    gate: Arc<watch::Sender<GateState>>,
    _c: std::marker::PhantomData<(C, A)>,
}

fn get_json<T: serde::de::DeserializeOwned>(
    get: Option<untorn::Value>,
) -> Result<Option<T>, Inner> {
    match get {
        Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
        None => Ok(None),
    }
}

fn data_name(gen: u64) -> String {
    format!("{DATA_PREFIX}{gen}")
}

fn read_gen(v: Option<untorn::Value>) -> Result<u64, Inner> {
    let v = v.ok_or_else(|| Inner::Invalid("state machine has no data_gen".into()))?;
    let b: [u8; 8] = v
        .as_bytes()
        .try_into()
        .map_err(|_| Inner::Invalid("data_gen is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(b))
}

fn meta_of<'t>(tx: &'t ReadTx<'_>) -> Result<Bucket<'t>, Inner> {
    tx.bucket(META_BUCKET)?
        .ok_or_else(|| Inner::Invalid("state machine meta bucket missing".into()))
}

fn meta_mut<'t>(tx: &'t WriteTx<'_>) -> Result<BucketMut<'t>, Inner> {
    tx.bucket(META_BUCKET)?
        .ok_or_else(|| Inner::Invalid("state machine meta bucket missing".into()))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A file name no other snapshot file of this process or an earlier one has.
fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{nanos:x}-{}-{n}", std::process::id())
}

fn current_pointer<C: RaftTypeConfig>(
    meta: &Bucket<'_>,
) -> Result<Option<SnapshotPointer<C>>, Inner> {
    get_json(meta.get(KEY_SNAPSHOT)?)
}

fn open_snapshot_file<C>(dir: &Path, p: SnapshotPointer<C>) -> Result<Snapshot<C>, Inner>
where
    C: RaftTypeConfig<SnapshotData = tokio::fs::File>,
{
    let f = File::open(dir.join(&p.file))?;
    Ok(Snapshot {
        meta: p.meta,
        snapshot: Box::new(tokio::fs::File::from_std(f)),
    })
}

impl<C, A> StateMachineStore<C, A>
where
    C: RaftTypeConfig<Entry = Entry<C>, SnapshotData = tokio::fs::File>,
    A: Apply<C>,
{
    /// Opens (or creates) the state machine database `db_path` with its snapshot folder
    /// `snapshot_dir`, removing what an interrupted snapshot build or install left.
    pub fn open(
        db_path: impl AsRef<Path>,
        snapshot_dir: impl AsRef<Path>,
        app: A,
    ) -> Result<Self, OpenError> {
        let db = Database::builder()
            .cache_size_bytes(64 << 20)
            .create(db_path.as_ref())?;
        let dir = snapshot_dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let (current, covered) = init_and_clean::<C>(&db)?;
        // Files: only the current snapshot survives an open.
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if Some(&name) != current.as_ref() {
                fs::remove_file(e.path())?;
            }
        }
        if let Some(name) = &current {
            if !dir.join(name).is_file() {
                return Err(OpenError::Invalid(format!(
                    "the current snapshot file {} is missing from {}",
                    name,
                    dir.display()
                )));
            }
        }
        sync_dir(&dir)?;
        Ok(StateMachineStore {
            db: Arc::new(db),
            dir: Arc::new(dir),
            app: Arc::new(app),
            install_chunk_bytes: INSTALL_CHUNK_BYTES_DEFAULT,
            gate: Arc::new(watch::Sender::new(GateState {
                covered,
                receiving: false,
                failed: false,
            })),
            _c: std::marker::PhantomData,
        })
    }

    /// What the log store waits on before purging (see [`GateState`]).
    pub(crate) fn gate(&self) -> watch::Receiver<GateState> {
        self.gate.subscribe()
    }

    /// Bytes of snapshot records loaded per commit while installing (bounds memory).
    pub fn with_install_chunk_bytes(mut self, bytes: usize) -> Self {
        self.install_chunk_bytes = bytes.max(1);
        self
    }

    /// The underlying database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// A handle that reads the state machine (the store itself moves into openraft).
    pub fn reader(&self) -> StateReader {
        StateReader {
            db: Arc::clone(&self.db),
        }
    }
}

/// Reads the state machine's committed state, beside openraft.
#[derive(Debug, Clone)]
pub struct StateReader {
    db: Arc<Database>,
}

impl StateReader {
    /// Runs `f` on one read transaction's view of the application's data bucket, and
    /// returns the index of the last applied entry of the same snapshot with its result.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Bucket<'_>) -> untorn::Result<T>,
    ) -> Result<(Option<u64>, T), OpenError> {
        let tx = self.db.begin_read()?;
        let meta = meta_of(&tx)?;
        let applied: Option<serde_json::Value> = get_json(meta.get(KEY_APPLIED)?)?;
        let applied = applied
            .as_ref()
            .and_then(|v| v.get("index"))
            .and_then(serde_json::Value::as_u64);
        let gen = read_gen(meta.get(KEY_DATA_GEN)?)?;
        let data = tx
            .bucket(data_name(gen))?
            .ok_or_else(|| OpenError::Invalid("live data bucket missing".into()))?;
        Ok((applied, f(&data)?))
    }

    /// The underlying database.
    pub fn database(&self) -> &Database {
        &self.db
    }
}

/// Creates the meta bucket on a new database; deletes staging buckets of an interrupted
/// install. Returns the current snapshot's file name and the last index it covers.
fn init_and_clean<C: RaftTypeConfig>(
    db: &Database,
) -> Result<(Option<String>, Option<u64>), Inner> {
    let tx = db.begin_write()?;
    let meta = tx.create_bucket_if_not_exists(META_BUCKET)?;
    if meta.get(KEY_FORMAT)?.is_none() {
        meta.put(KEY_FORMAT, FORMAT_VERSION)?;
        meta.put(KEY_DATA_GEN, 0u64.to_be_bytes())?;
        tx.create_bucket_if_not_exists(data_name(0))?;
    }
    let format = meta.get(KEY_FORMAT)?;
    if format.as_deref() != Some(FORMAT_VERSION) {
        return Err(Inner::Invalid("unknown state machine format".into()));
    }
    let gen = read_gen(meta.get(KEY_DATA_GEN)?)?;
    let live = data_name(gen);
    let mut stale = Vec::new();
    for name in tx.buckets()? {
        if name.starts_with(DATA_PREFIX.as_bytes()) && name != live.as_bytes() {
            stale.push(name);
        }
    }
    for name in &stale {
        tracing::info!(
            "removing {} left by an interrupted snapshot install",
            String::from_utf8_lossy(name)
        );
        tx.delete_bucket(name)?;
    }
    let current: Option<SnapshotPointer<C>> = get_json(meta.get(KEY_SNAPSHOT)?)?;
    tx.commit()?;
    let covered = current
        .as_ref()
        .and_then(|p| p.meta.last_log_id.as_ref().map(|l| l.index));
    Ok((current.map(|p| p.file), covered))
}

fn apply_blocking<C, A>(db: &Database, app: &A, entries: Vec<Entry<C>>) -> Result<Vec<C::R>, Inner>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
    A: Apply<C>,
{
    let tx = db.begin_write()?;
    let meta = meta_mut(&tx)?;
    let gen = read_gen(meta.get(KEY_DATA_GEN)?)?;
    let data = tx
        .bucket(data_name(gen))?
        .ok_or_else(|| Inner::Invalid("live data bucket missing".into()))?;
    let mut last: Option<LogId<C::NodeId>> = get_json(meta.get(KEY_APPLIED)?)?.flatten();
    let mut membership = None;
    let mut out = Vec::with_capacity(entries.len());
    for e in &entries {
        if let Some(prev) = &last {
            // openraft applies consecutive entries; the storage suite feeds gaps on
            // purpose, so only the invariant that matters here is enforced: an entry at
            // or below the applied index is never applied (again).
            if e.log_id.index <= prev.index {
                return Err(Inner::Invalid(format!(
                    "apply of index {} after {}: an entry is never applied twice",
                    e.log_id.index, prev.index
                )));
            }
        }
        let r = match &e.payload {
            EntryPayload::Blank => app.apply(&data, &e.log_id, None)?,
            EntryPayload::Normal(d) => app.apply(&data, &e.log_id, Some(d))?,
            EntryPayload::Membership(m) => {
                membership = Some(StoredMembership::new(Some(e.log_id.clone()), m.clone()));
                app.apply(&data, &e.log_id, None)?
            }
        };
        out.push(r);
        last = Some(e.log_id.clone());
    }
    meta.put(KEY_APPLIED, serde_json::to_vec(&last)?)?;
    if let Some(m) = membership {
        meta.put(KEY_MEMBERSHIP, serde_json::to_vec(&m)?)?;
    }
    tx.commit()?;
    Ok(out)
}

/// Streams the live data bucket of one read transaction into a new snapshot file.
fn build_blocking<C>(
    db: &Database,
    dir: &Path,
    gate: &watch::Sender<GateState>,
) -> Result<Snapshot<C>, Inner>
where
    C: RaftTypeConfig<SnapshotData = tokio::fs::File>,
{
    let tx = db.begin_read()?;
    let meta_b = meta_of(&tx)?;
    let last_log_id: Option<LogId<C::NodeId>> = get_json(meta_b.get(KEY_APPLIED)?)?.flatten();
    let last_membership: StoredMembership<C::NodeId, C::Node> =
        get_json(meta_b.get(KEY_MEMBERSHIP)?)?.unwrap_or_default();
    let gen = read_gen(meta_b.get(KEY_DATA_GEN)?)?;
    let data = tx
        .bucket(data_name(gen))?
        .ok_or_else(|| Inner::Invalid("live data bucket missing".into()))?;
    let snapshot_id = match &last_log_id {
        Some(l) => format!("{}-{}-{}-tx{}", l.leader_id, l.index, unique(""), tx.txid()),
        None => format!("none-{}-tx{}", unique(""), tx.txid()),
    };
    let meta: Meta<C> = SnapshotMeta {
        last_log_id,
        last_membership,
        snapshot_id,
    };
    let tmp = dir.join(unique("building-"));
    let file_name = unique("snap-");
    let result = (|| {
        let f = File::create(&tmp)?;
        let mut w = SnapWriter::new(BufWriter::new(f), &serde_json::to_vec(&meta)?)?;
        write_tree(&data, &mut w)?;
        let f = w
            .finish()?
            .into_inner()
            .map_err(|e| Inner::Io(e.into_error()))?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(&file_name))?;
        sync_dir(dir)?;
        Ok::<(), Inner>(())
    })();
    drop(tx);
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let snap = open_snapshot_file(
        dir,
        SnapshotPointer::<C> {
            file: file_name.clone(),
            meta: meta.clone(),
        },
    )?;
    // Point at it unless a newer snapshot (an install racing this build) is current.
    let wtx = db.begin_write()?;
    let m = meta_mut(&wtx)?;
    let old: Option<SnapshotPointer<C>> = get_json(m.get(KEY_SNAPSHOT)?)?;
    let newer_exists = old
        .as_ref()
        .is_some_and(|o| o.meta.last_log_id > meta.last_log_id);
    let garbage = if newer_exists {
        wtx.abort();
        Some(file_name)
    } else {
        let p = SnapshotPointer::<C> {
            file: file_name,
            meta,
        };
        let covered = p.meta.last_log_id.as_ref().map(|l| l.index);
        m.put(KEY_SNAPSHOT, serde_json::to_vec(&p)?)?;
        wtx.commit()?;
        gate.send_modify(|g| g.covered = g.covered.max(covered));
        old.map(|o| o.file)
    };
    if let Some(g) = garbage {
        // An open handle (a snapshot being sent) keeps reading the unlinked file.
        fs::remove_file(dir.join(g))?;
    }
    Ok(snap)
}

/// Walks a bucket tree with an explicit stack (no recursion), depth-bounded.
fn write_tree<W: Write>(root: &Bucket<'_>, w: &mut SnapWriter<W>) -> Result<(), Inner> {
    let mut stack = vec![(root.clone(), root.cursor(), false)];
    loop {
        let depth = stack.len();
        let Some((bucket, cursor, started)) = stack.last_mut() else {
            break;
        };
        let item = if *started {
            cursor.next()?
        } else {
            *started = true;
            cursor.first()?
        };
        match item {
            None => {
                stack.pop();
                if !stack.is_empty() {
                    w.leave()?;
                }
            }
            Some((k, untorn::Entry::Value(v))) => w.put(&k, &v)?,
            Some((k, untorn::Entry::Bucket)) => {
                if depth + 1 >= untorn::MAX_BUCKET_DEPTH {
                    return Err(Inner::Invalid("buckets nested too deep to snapshot".into()));
                }
                let child = bucket
                    .bucket(&k)?
                    .ok_or_else(|| Inner::Invalid("nested bucket vanished".into()))?;
                w.enter(&k)?;
                let c = child.cursor();
                stack.push((child, c, false));
            }
        }
    }
    Ok(())
}

fn install_blocking<C>(
    db: &Database,
    dir: &Path,
    meta: &Meta<C>,
    source: File,
    chunk_bytes: usize,
) -> Result<(), Inner>
where
    C: RaftTypeConfig<SnapshotData = tokio::fs::File>,
{
    let mut source = source;
    source.seek(SeekFrom::Start(0))?;
    let tmp = dir.join(unique("installing-"));
    let file_name = unique("snap-");
    let result = (|| {
        let copy = BufWriter::new(File::create(&tmp)?);
        let (mut reader, meta_json) = SnapReader::open(BufReader::new(source), copy)?;
        let file_meta: Meta<C> = serde_json::from_slice(&meta_json)?;
        if file_meta != *meta {
            return Err(Inner::Invalid(format!(
                "snapshot file holds {file_meta}, openraft installs {meta}"
            )));
        }
        let gen = {
            let tx = db.begin_read()?;
            read_gen(meta_of(&tx)?.get(KEY_DATA_GEN)?)?
        };
        let staging = data_name(gen + 1);
        let old = data_name(gen);
        // Load in commits of bounded size; `path` is where the stream is in the tree.
        let mut path: Vec<Vec<u8>> = Vec::new();
        let mut first = true;
        let mut done = false;
        while !done {
            let tx = db.begin_write()?;
            if first {
                if tx.bucket(&staging)?.is_some() {
                    tx.delete_bucket(&staging)?;
                }
                first = false;
            }
            let mut stack = vec![tx.create_bucket_if_not_exists(&staging)?];
            for name in &path {
                let parent = *stack
                    .last()
                    .ok_or_else(|| Inner::Invalid("empty path".into()))?;
                let b = parent
                    .bucket(name)?
                    .ok_or_else(|| Inner::Invalid("staging bucket vanished".into()))?;
                stack.push(b);
            }
            let mut loaded = 0usize;
            while loaded < chunk_bytes {
                let top = *stack
                    .last()
                    .ok_or_else(|| Inner::Invalid("empty path".into()))?;
                match reader.next_record()? {
                    Record::Put(k, v) => {
                        loaded += k.len() + v.len() + 16;
                        top.put(&k, &v)?;
                    }
                    Record::Enter(name) => {
                        loaded += name.len() + 64;
                        stack.push(top.create_bucket(&name)?);
                        path.push(name);
                    }
                    Record::Leave => {
                        stack.pop();
                        path.pop();
                    }
                    Record::End => {
                        done = true;
                        break;
                    }
                }
            }
            drop(stack);
            tx.commit()?;
        }
        let copy = reader.into_tee();
        let f = copy.into_inner().map_err(|e| Inner::Io(e.into_error()))?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(&file_name))?;
        sync_dir(dir)?;
        // The switch: one commit makes the new state machine and its snapshot current.
        let tx = db.begin_write()?;
        let m = meta_mut(&tx)?;
        let old_ptr: Option<SnapshotPointer<C>> = get_json(m.get(KEY_SNAPSHOT)?)?;
        m.put(KEY_DATA_GEN, (gen + 1).to_be_bytes())?;
        m.put(KEY_APPLIED, serde_json::to_vec(&meta.last_log_id)?)?;
        m.put(KEY_MEMBERSHIP, serde_json::to_vec(&meta.last_membership)?)?;
        let p = SnapshotPointer::<C> {
            file: file_name.clone(),
            meta: meta.clone(),
        };
        m.put(KEY_SNAPSHOT, serde_json::to_vec(&p)?)?;
        tx.delete_bucket(&old)?;
        tx.commit()?;
        Ok(old_ptr.map(|o| o.file))
    })();
    match result {
        Ok(old_file) => {
            // Housekeeping after the switch; a crash here is cleaned at the next open.
            if let Some(f) = old_file {
                let _ = fs::remove_file(dir.join(f));
            }
            for e in fs::read_dir(dir)?.flatten() {
                if e.file_name().to_string_lossy().starts_with("receiving-") {
                    let _ = fs::remove_file(e.path());
                }
            }
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            let _ = fs::remove_file(dir.join(&file_name));
            Err(e)
        }
    }
}

fn sm_err<NID: openraft::NodeId>(verb: ErrorVerb) -> impl FnOnce(Inner) -> StorageError<NID> {
    move |e| e.into_storage(ErrorSubject::StateMachine, verb)
}

fn snap_err<NID: openraft::NodeId>(verb: ErrorVerb) -> impl FnOnce(Inner) -> StorageError<NID> {
    move |e| e.into_storage(ErrorSubject::Snapshot(None), verb)
}

impl<C, A> RaftSnapshotBuilder<C> for SnapshotBuilder<C, A>
where
    C: RaftTypeConfig<Entry = Entry<C>, SnapshotData = tokio::fs::File>,
    A: Apply<C>,
{
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, StorageError<C::NodeId>> {
        let db = Arc::clone(&self.db);
        let dir = Arc::clone(&self.dir);
        let gate = Arc::clone(&self.gate);
        blocking(move || build_blocking::<C>(&db, &dir, &gate))
            .await
            .map_err(snap_err(ErrorVerb::Write))
    }
}

impl<C, A> RaftStateMachine<C> for StateMachineStore<C, A>
where
    C: RaftTypeConfig<Entry = Entry<C>, SnapshotData = tokio::fs::File>,
    A: Apply<C>,
{
    type SnapshotBuilder = SnapshotBuilder<C, A>;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (
            Option<LogId<C::NodeId>>,
            StoredMembership<C::NodeId, C::Node>,
        ),
        StorageError<C::NodeId>,
    > {
        let db = Arc::clone(&self.db);
        blocking(move || {
            let tx = db.begin_read()?;
            let meta = meta_of(&tx)?;
            let applied = get_json(meta.get(KEY_APPLIED)?)?.flatten();
            let membership = get_json(meta.get(KEY_MEMBERSHIP)?)?.unwrap_or_default();
            Ok((applied, membership))
        })
        .await
        .map_err(sm_err(ErrorVerb::Read))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<C::R>, StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = Entry<C>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let entries: Vec<Entry<C>> = entries.into_iter().collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let db = Arc::clone(&self.db);
        let app = Arc::clone(&self.app);
        blocking(move || apply_blocking(&db, &*app, entries))
            .await
            .map_err(sm_err(ErrorVerb::Write))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: Arc::clone(&self.db),
            dir: Arc::clone(&self.dir),
            gate: Arc::clone(&self.gate),
            _c: std::marker::PhantomData,
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<tokio::fs::File>, StorageError<C::NodeId>> {
        self.gate.send_modify(|g| {
            g.receiving = true;
            g.failed = false;
        });
        let path = self.dir.join(unique("receiving-"));
        let f = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| snap_err(ErrorVerb::Write)(e.into()))?;
        Ok(Box::new(f))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<C::NodeId, C::Node>,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError<C::NodeId>> {
        let mut f = *snapshot;
        // Writes through tokio's File complete in the background: flush them first.
        tokio::io::AsyncWriteExt::flush(&mut f)
            .await
            .map_err(|e| snap_err(ErrorVerb::Read)(e.into()))?;
        let source = f.into_std().await;
        let db = Arc::clone(&self.db);
        let dir = Arc::clone(&self.dir);
        let meta = meta.clone();
        let chunk = self.install_chunk_bytes;
        let covered = meta.last_log_id.as_ref().map(|l| l.index);
        let r = blocking(move || install_blocking::<C>(&db, &dir, &meta, source, chunk)).await;
        // Only now, with the switch durable (or failed), may a held-back purge go on.
        self.gate.send_modify(|g| {
            g.receiving = false;
            match &r {
                Ok(()) => g.covered = covered,
                Err(_) => g.failed = true,
            }
        });
        r.map_err(snap_err(ErrorVerb::Write))
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<C>>, StorageError<C::NodeId>> {
        let db = Arc::clone(&self.db);
        let dir = Arc::clone(&self.dir);
        blocking(move || {
            // A build finishing concurrently may replace (and delete) the file between
            // reading the pointer and opening it: read the pointer again then.
            let mut attempts = 0;
            loop {
                let tx = db.begin_read()?;
                let ptr = current_pointer::<C>(&meta_of(&tx)?)?;
                drop(tx);
                match ptr.map(|p| open_snapshot_file(&dir, p)).transpose() {
                    Err(Inner::Io(e))
                        if e.kind() == std::io::ErrorKind::NotFound && attempts < 8 =>
                    {
                        attempts += 1;
                    }
                    other => return other,
                }
            }
        })
        .await
        .map_err(snap_err(ErrorVerb::Read))
    }
}
