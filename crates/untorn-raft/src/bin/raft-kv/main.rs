//! `raft-kv`: one node of a replicated key/value service, openraft over plain TCP, with
//! untorn-raft as its storage.
//!
//! ```sh
//! raft-kv --id 1 --dir n1 --listen 127.0.0.1:7001 &
//! raft-kv --id 2 --dir n2 --listen 127.0.0.1:7002 &
//! raft-kv --id 3 --dir n3 --listen 127.0.0.1:7003 &
//! # then send Rpc::Init([(1, "127.0.0.1:7001"), ...]) to one node (see untorn_raft::kv)
//! ```
//!
//! The node prints one line to stdout, `listening ADDR`, once it accepts connections;
//! logs go to stderr. It stops only when killed.

mod network;

use std::collections::BTreeMap;
use std::hash::Hasher;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use openraft::storage::RaftLogReader;
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use untorn_raft::kv::{self, Audit, KvApp, KvConfig, Reply, Rpc, Status};
use untorn_raft::{LogStore, StateReader};

#[derive(Parser, Debug)]
#[command(about = "One node of the untorn-raft replicated key/value example")]
struct Args {
    /// Node id (a positive integer, unique in the cluster).
    #[arg(long)]
    id: u64,
    /// Directory of this node's storage (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Address to listen on (port 0: any free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Build a snapshot every this many applied entries (and purge the log behind it).
    #[arg(long, default_value_t = 5000)]
    snapshot_logs: u64,
    /// Bytes of snapshot records loaded per commit while installing a snapshot.
    #[arg(long, default_value_t = untorn_raft::INSTALL_CHUNK_BYTES_DEFAULT)]
    install_chunk_bytes: usize,
    /// Heartbeat interval in milliseconds (elections time out after 3-6 heartbeats).
    #[arg(long, default_value_t = 100)]
    heartbeat_ms: u64,
}

struct Node {
    id: u64,
    raft: Raft<KvConfig>,
    log: LogStore<KvConfig>,
    state: StateReader,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raft-kv: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raft-kv: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let (log, sm) = untorn_raft::open::<KvConfig, KvApp>(&args.dir, KvApp)
        .map_err(|e| format!("open {}: {e}", args.dir.display()))?;
    let sm = sm.with_install_chunk_bytes(args.install_chunk_bytes);
    let state = sm.reader();
    let config = Config {
        cluster_name: "raft-kv".into(),
        heartbeat_interval: args.heartbeat_ms,
        election_timeout_min: args.heartbeat_ms * 3,
        election_timeout_max: args.heartbeat_ms * 6,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(args.snapshot_logs),
        max_in_snapshot_log_to_keep: 0,
        snapshot_max_chunk_size: 1 << 20,
        ..Default::default()
    }
    .validate()
    .map_err(|e| format!("config: {e}"))?;
    let raft = Raft::new(args.id, Arc::new(config), network::Network, log.clone(), sm)
        .await
        .map_err(|e| format!("raft: {e}"))?;
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening {addr}");
    let node = Arc::new(Node {
        id: args.id,
        raft,
        log,
        state,
    });
    loop {
        let (sock, _) = listener
            .accept()
            .await
            .map_err(|e| format!("accept: {e}"))?;
        let node = Arc::clone(&node);
        tokio::spawn(async move {
            if let Err(e) = serve(sock, node).await {
                tracing::debug!("connection closed: {e}");
            }
        });
    }
}

async fn serve(mut sock: TcpStream, node: Arc<Node>) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    loop {
        let mut len = [0u8; 4];
        if let Err(e) = sock.read_exact(&mut len).await {
            return if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Ok(())
            } else {
                Err(e)
            };
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > kv::FRAME_BYTES_MAX {
            return Err(std::io::Error::other("frame too large"));
        }
        let mut body = vec![0u8; len];
        sock.read_exact(&mut body).await?;
        let rpc: Rpc = serde_json::from_slice(&body)?;
        let reply = handle(&node, rpc).await;
        let body = serde_json::to_vec(&reply)?;
        let len = u32::try_from(body.len()).map_err(std::io::Error::other)?;
        sock.write_all(&len.to_be_bytes()).await?;
        sock.write_all(&body).await?;
    }
}

async fn handle(node: &Node, rpc: Rpc) -> Reply {
    match rpc {
        Rpc::AppendEntries(req) => Reply::AppendEntries(node.raft.append_entries(req).await),
        Rpc::InstallSnapshot(req) => Reply::InstallSnapshot(node.raft.install_snapshot(req).await),
        Rpc::Vote(req) => Reply::Vote(node.raft.vote(req).await),
        Rpc::Init(members) => {
            let members: BTreeMap<u64, BasicNode> = members
                .into_iter()
                .map(|(id, addr)| (id, BasicNode::new(addr)))
                .collect();
            Reply::Done(
                node.raft
                    .initialize(members)
                    .await
                    .map_err(|e| e.to_string()),
            )
        }
        Rpc::Write(req) => Reply::Write(node.raft.client_write(req).await),
        Rpc::Dump { linearizable } => {
            if linearizable {
                if let Err(e) = node.raft.ensure_linearizable().await {
                    return Reply::Dump(Err(e.to_string()));
                }
            }
            Reply::Dump(node.state.read(kv::dump).map_err(|e| e.to_string()))
        }
        Rpc::Status => Reply::Status(status(node)),
        Rpc::LogDigest { from, to } => Reply::LogDigest(log_digest(node, from, to).await),
        Rpc::Snapshot => Reply::Done(
            node.raft
                .trigger()
                .snapshot()
                .await
                .map_err(|e| e.to_string()),
        ),
    }
}

fn status(node: &Node) -> Status {
    let m = node.raft.metrics().borrow().clone();
    let (audit_applied, audit) = node
        .state
        .read(Audit::read)
        .unwrap_or((None, Audit::default()));
    Status {
        id: node.id,
        state: format!("{:?}", m.state),
        leader: m.current_leader,
        term: m.current_term,
        last_log_index: m.last_log_index,
        last_applied: m.last_applied.map(|l| l.index),
        purged: m.purged.map(|l| l.index),
        snapshot: m.snapshot.map(|l| l.index),
        audit,
        audit_applied,
    }
}

/// FNV-1a over the JSON of every entry in `[from, to)` that the log holds.
async fn log_digest(node: &Node, from: u64, to: u64) -> Result<(u64, u64), String> {
    let mut reader = node.log.clone();
    let entries = reader
        .try_get_log_entries(from..to)
        .await
        .map_err(|e| e.to_string())?;
    let mut h = fnv::FnvHasher::default();
    for e in &entries {
        h.write(&serde_json::to_vec(e).map_err(|e| e.to_string())?);
    }
    Ok((entries.len() as u64, h.finish()))
}
