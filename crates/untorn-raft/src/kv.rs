//! The replicated key/value example (`raft-kv`): its requests, its state machine, and
//! the wire protocol its nodes and clients speak.
//!
//! The state machine keeps user keys in nested bucket `kv` and an audit record in
//! nested bucket `audit`: `count`, the number of log entries applied, and `chain`, a
//! hash chained over every applied entry (index and request). Two nodes that applied the
//! same entries exactly once each have the same `(count, chain)` at the same applied
//! index; an entry applied twice or skipped changes both. The crash tests compare them.
//!
//! Wire protocol: each message is a 4-byte big-endian length and that many bytes of
//! JSON ([`Rpc`] requests, [`Reply`] answers), one answer per request, in order, on a
//! plain TCP connection.

use std::hash::Hasher;
use std::io::{self, Read, Write};

use openraft::error::{ClientWriteError, InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, ClientWriteResponse, InstallSnapshotRequest,
    InstallSnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, LogId};
use serde::{Deserialize, Serialize};
use untorn::BucketMut;

use crate::state_machine::Apply;

/// A write to the replicated map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
}

/// The answer to a write, once applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The value the key held before.
    pub previous: Option<String>,
}

openraft::declare_raft_types!(
    /// The raft types of the key/value example.
    pub KvConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = BasicNode,
        SnapshotData = tokio::fs::File,
);

/// The key/value state machine's logic (see the module docs for its audit record).
#[derive(Debug, Clone, Copy, Default)]
pub struct KvApp;

const KV_BUCKET: &[u8] = b"kv";
const AUDIT_BUCKET: &[u8] = b"audit";
const AUDIT_COUNT: &[u8] = b"count";
const AUDIT_CHAIN: &[u8] = b"chain";

fn read_u64(v: Option<untorn::Value>) -> untorn::Result<u64> {
    match v {
        None => Ok(0),
        Some(v) => match <[u8; 8]>::try_from(v.as_bytes()) {
            Ok(b) => Ok(u64::from_be_bytes(b)),
            Err(_) => Err(untorn::Error::Corrupted {
                page: 0,
                kind: untorn::CorruptionKind::Invalid,
                detail: "audit value is not 8 bytes".into(),
            }),
        },
    }
}

/// The audit record of a state machine: entries applied, and their hash chain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    /// Log entries applied (blank and membership entries included).
    pub count: u64,
    /// FNV-1a chained over (previous chain, index, request JSON) of every entry applied.
    pub chain: u64,
}

impl Audit {
    /// Reads the audit record from a data bucket.
    pub fn read(data: &untorn::Bucket<'_>) -> untorn::Result<Audit> {
        match data.bucket(AUDIT_BUCKET)? {
            None => Ok(Audit::default()),
            Some(a) => Ok(Audit {
                count: read_u64(a.get(AUDIT_COUNT)?)?,
                chain: read_u64(a.get(AUDIT_CHAIN)?)?,
            }),
        }
    }
}

/// Every user key and value of a data bucket, in key order.
pub fn dump(data: &untorn::Bucket<'_>) -> untorn::Result<Vec<(String, String)>> {
    let Some(kv) = data.bucket(KV_BUCKET)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in kv.iter()? {
        let (k, v) = item?;
        out.push((
            String::from_utf8_lossy(&k).into_owned(),
            String::from_utf8_lossy(&v).into_owned(),
        ));
    }
    Ok(out)
}

/// One user key of a data bucket.
pub fn get(data: &untorn::Bucket<'_>, key: &str) -> untorn::Result<Option<String>> {
    let Some(kv) = data.bucket(KV_BUCKET)? else {
        return Ok(None);
    };
    Ok(kv
        .get(key)?
        .map(|v| String::from_utf8_lossy(&v).into_owned()))
}

impl Apply<KvConfig> for KvApp {
    fn apply(
        &self,
        data: &BucketMut<'_>,
        log_id: &LogId<u64>,
        request: Option<&Request>,
    ) -> untorn::Result<Response> {
        let audit = data.create_bucket_if_not_exists(AUDIT_BUCKET)?;
        let count = read_u64(audit.get(AUDIT_COUNT)?)?;
        let chain = read_u64(audit.get(AUDIT_CHAIN)?)?;
        let mut h = fnv::FnvHasher::with_key(chain);
        h.write_u64(log_id.index);
        match request {
            Some(r) => h.write(&serde_json::to_vec(r).unwrap_or_default()),
            None => h.write(b"-"),
        }
        audit.put(AUDIT_COUNT, (count + 1).to_be_bytes())?;
        audit.put(AUDIT_CHAIN, h.finish().to_be_bytes())?;
        let kv = data.create_bucket_if_not_exists(KV_BUCKET)?;
        let previous = match request {
            None => None,
            Some(Request::Set { key, value }) => {
                let prev = kv.get(key)?;
                kv.put(key, value)?;
                prev
            }
            Some(Request::Delete { key }) => {
                let prev = kv.get(key)?;
                kv.delete(key)?;
                prev
            }
        };
        Ok(Response {
            previous: previous.map(|v| String::from_utf8_lossy(&v).into_owned()),
        })
    }
}

/// What a node reports about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The node's id.
    pub id: u64,
    /// `Leader`, `Follower`, `Candidate` or `Learner`.
    pub state: String,
    /// The leader this node knows of.
    pub leader: Option<u64>,
    /// The node's current term.
    pub term: u64,
    /// Index of the last log entry.
    pub last_log_index: Option<u64>,
    /// Index of the last entry applied to the state machine.
    pub last_applied: Option<u64>,
    /// Index of the last purged log entry.
    pub purged: Option<u64>,
    /// Last index the current snapshot covers.
    pub snapshot: Option<u64>,
    /// The state machine's audit record, read in the same transaction as `audit_applied`.
    pub audit: Audit,
    /// The applied index stored with `audit` (the state machine's own record).
    pub audit_applied: Option<u64>,
}

/// A node's applied index and every key/value pair of that snapshot.
pub type Dumped = (Option<u64>, Vec<(String, String)>);

/// A request to a node.
#[derive(Debug, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)]
pub enum Rpc {
    /// Raft: replicate entries.
    AppendEntries(AppendEntriesRequest<KvConfig>),
    /// Raft: one chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<KvConfig>),
    /// Raft: a vote request.
    Vote(VoteRequest<u64>),
    /// Client: initialise the cluster with these members (id, address).
    Init(Vec<(u64, String)>),
    /// Client: a write (only the leader accepts it).
    Write(Request),
    /// Client: every key and value, after a linearizable read barrier if asked.
    Dump {
        /// Confirm leadership with a quorum first (leader only).
        linearizable: bool,
    },
    /// Client: the node's status.
    Status,
    /// Client: a digest of the log entries with indexes in `[from, to)` the node holds.
    LogDigest {
        /// First index.
        from: u64,
        /// One past the last index.
        to: u64,
    },
    /// Client: build a snapshot now.
    Snapshot,
}

/// A node's answer.
#[derive(Debug, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    /// To [`Rpc::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    /// To [`Rpc::InstallSnapshot`].
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    /// To [`Rpc::Vote`].
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    /// To [`Rpc::Write`].
    Write(Result<ClientWriteResponse<KvConfig>, RaftError<u64, ClientWriteError<u64, BasicNode>>>),
    /// To [`Rpc::Dump`]: applied index and pairs, or why not.
    Dump(Result<Dumped, String>),
    /// To [`Rpc::Status`].
    Status(Status),
    /// To [`Rpc::LogDigest`]: entries found and their digest.
    LogDigest(Result<(u64, u64), String>),
    /// To [`Rpc::Init`] and [`Rpc::Snapshot`].
    Done(Result<(), String>),
}

/// Frames larger than this are refused (a snapshot chunk is far smaller).
pub const FRAME_BYTES_MAX: usize = 64 << 20;

/// Writes one frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let body = serde_json::to_vec(msg)?;
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(&body)?;
    w.flush()
}

/// Reads one frame.
pub fn read_frame<T: serde::de::DeserializeOwned>(r: &mut impl Read) -> io::Result<T> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > FRAME_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(serde_json::from_slice(&body)?)
}

/// A blocking client connection to one node (tests and tools).
#[derive(Debug)]
pub struct Client {
    stream: std::net::TcpStream,
}

impl Client {
    /// Connects to a node.
    pub fn connect(addr: &str, timeout: std::time::Duration) -> io::Result<Client> {
        let sa: std::net::SocketAddr = addr
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
        let stream = std::net::TcpStream::connect_timeout(&sa, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Client { stream })
    }

    /// Sends a request and waits for its answer.
    pub fn call(&mut self, rpc: &Rpc) -> io::Result<Reply> {
        write_frame(&mut self.stream, rpc)?;
        read_frame(&mut self.stream)
    }
}
