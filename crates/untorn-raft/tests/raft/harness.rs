//! A cluster of real `raft-kv` processes on loopback, killed with SIGKILL.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use untorn_raft::kv::{Client, Reply, Request, Rpc, Status};

pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// Options every node of a cluster starts with.
#[derive(Clone, Debug)]
pub struct NodeOpts {
    pub snapshot_logs: u64,
    pub install_chunk_bytes: usize,
}

impl Default for NodeOpts {
    fn default() -> Self {
        NodeOpts {
            snapshot_logs: 5000,
            install_chunk_bytes: untorn_raft::INSTALL_CHUNK_BYTES_DEFAULT,
        }
    }
}

pub struct Node {
    pub id: u64,
    pub dir: PathBuf,
    pub addr: String,
    child: Option<Child>,
    opts: NodeOpts,
}

impl Node {
    pub fn start(id: u64, root: &Path, listen: &str, opts: &NodeOpts) -> Node {
        let dir = root.join(format!("n{id}"));
        std::fs::create_dir_all(&dir).expect("node dir");
        let mut node = Node {
            id,
            dir,
            addr: listen.to_string(),
            child: None,
            opts: opts.clone(),
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "node {} is running", self.id);
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("stderr.log"))
            .expect("stderr log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_raft-kv"))
            .arg("--id")
            .arg(self.id.to_string())
            .arg("--dir")
            .arg(self.dir.join("data"))
            .arg("--listen")
            .arg(&self.addr)
            .arg("--snapshot-logs")
            .arg(self.opts.snapshot_logs.to_string())
            .arg("--install-chunk-bytes")
            .arg(self.opts.install_chunk_bytes.to_string())
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn raft-kv");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("node {} printed {line:?} instead of its address", self.id));
        self.addr = addr.to_string();
        self.child = Some(child);
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL (`Child::kill` sends SIGKILL on Unix), then reap.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("node is running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    pub fn restart(&mut self) {
        self.spawn();
    }

    pub fn snapshot_dir(&self) -> PathBuf {
        self.dir.join("data").join("snapshots")
    }

    pub fn call(&self, rpc: &Rpc) -> std::io::Result<Reply> {
        Client::connect(&self.addr, RPC_TIMEOUT)?.call(rpc)
    }

    pub fn status(&self) -> Option<Status> {
        match self.call(&Rpc::Status) {
            Ok(Reply::Status(s)) => Some(s),
            _ => None,
        }
    }

    /// The node's key/value pairs and the applied index they reflect.
    pub fn dump(
        &self,
        linearizable: bool,
    ) -> Result<(Option<u64>, BTreeMap<String, String>), String> {
        match self.call(&Rpc::Dump { linearizable }) {
            Ok(Reply::Dump(Ok((applied, pairs)))) => Ok((applied, pairs.into_iter().collect())),
            Ok(Reply::Dump(Err(e))) => Err(e),
            Ok(other) => Err(format!("unexpected reply {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    pub fn log_digest(&self, from: u64, to: u64) -> (u64, u64) {
        match self.call(&Rpc::LogDigest { from, to }) {
            Ok(Reply::LogDigest(Ok(d))) => d,
            other => panic!("log digest of node {}: {other:?}", self.id),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `f` every 20 ms until it returns `Some`, or panics after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    _root: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` nodes and initialises them as one cluster.
    pub fn start(n: u64, opts: &NodeOpts) -> Cluster {
        let root = tempfile::tempdir().expect("tempdir");
        let nodes: Vec<Node> = (1..=n)
            .map(|id| Node::start(id, root.path(), "127.0.0.1:0", opts))
            .collect();
        let members: Vec<(u64, String)> = nodes.iter().map(|n| (n.id, n.addr.clone())).collect();
        match nodes[0].call(&Rpc::Init(members)) {
            Ok(Reply::Done(Ok(()))) => {}
            other => panic!("init: {other:?}"),
        }
        let c = Cluster { nodes, _root: root };
        c.leader(Duration::from_secs(30));
        c
    }

    pub fn node(&self, id: u64) -> &Node {
        self.nodes.iter().find(|n| n.id == id).expect("node id")
    }

    pub fn node_mut(&mut self, id: u64) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).expect("node id")
    }

    /// The leader that every running node agrees on.
    pub fn leader(&self, timeout: Duration) -> u64 {
        wait_for("a leader all running nodes agree on", timeout, || {
            let statuses: Vec<Status> = self
                .nodes
                .iter()
                .filter(|n| n.is_running())
                .map(|n| n.status())
                .collect::<Option<Vec<_>>>()?;
            let leader = statuses.iter().find(|s| s.state == "Leader")?;
            statuses
                .iter()
                .all(|s| s.leader == Some(leader.id) && s.term == leader.term)
                .then_some(leader.id)
        })
    }

    /// Writes through `leader`; `Ok(true)` when acknowledged (applied on a quorum's
    /// log and on the leader's state machine), `Ok(false)` when the node is not the
    /// leader, `Err` on a transport error (the outcome is unknown then).
    pub fn write_via(&self, leader: u64, key: &str, value: &str) -> std::io::Result<bool> {
        let req = Request::Set {
            key: key.into(),
            value: value.into(),
        };
        match self.node(leader).call(&Rpc::Write(req))? {
            Reply::Write(Ok(_)) => Ok(true),
            Reply::Write(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                Ok(false)
            }
            other => Err(std::io::Error::other(format!("write: {other:?}"))),
        }
    }

    /// Waits until every running node has applied the same index with the same audit
    /// record, and checks that the audit counts every entry exactly once.
    pub fn converged(&self, timeout: Duration) -> Status {
        let s = wait_for(
            "all running nodes to apply the same entries",
            timeout,
            || {
                let statuses: Vec<Status> = self
                    .nodes
                    .iter()
                    .filter(|n| n.is_running())
                    .map(|n| n.status())
                    .collect::<Option<Vec<_>>>()?;
                let first = statuses.first()?.clone();
                let same = statuses.iter().all(|s| {
                    s.last_applied == first.last_applied
                        && s.audit_applied == first.last_applied
                        && s.last_log_index == first.last_log_index
                });
                same.then_some(statuses)
            },
        );
        let first = s[0].clone();
        for st in &s {
            assert_eq!(
                st.audit, first.audit,
                "node {} and node {} applied the same index {:?} with different audits: \
                 an entry was applied twice or skipped",
                st.id, first.id, st.last_applied
            );
        }
        // Log index 0 holds the initial membership; every index up to the applied one is
        // applied exactly once, so the count is the applied index + 1.
        assert_eq!(
            Some(first.audit.count),
            first.audit_applied.map(|i| i + 1),
            "entries applied vs the applied index: {first:?}"
        );
        first
    }

    /// Compares the log entries every running node holds over their common range.
    pub fn logs_agree(&self) {
        let statuses: Vec<Status> = self
            .nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.status().expect("status"))
            .collect();
        let from = statuses
            .iter()
            .map(|s| s.purged.map_or(0, |p| p + 1))
            .max()
            .expect("nodes");
        let to = statuses
            .iter()
            .map(|s| s.last_log_index.map_or(0, |l| l + 1))
            .min()
            .expect("nodes");
        if from >= to {
            return;
        }
        let digests: Vec<(u64, (u64, u64))> = self
            .nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| (n.id, n.log_digest(from, to)))
            .collect();
        for (id, d) in &digests {
            assert_eq!(
                d.0,
                to - from,
                "node {id} is missing log entries in [{from}, {to})"
            );
            assert_eq!(
                *d, digests[0].1,
                "node {id}'s log differs from node {}'s in [{from}, {to})",
                digests[0].0
            );
        }
    }
}

/// A tiny deterministic generator for delays and choices (seeded, printed on failure).
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Prng {
        Prng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        // A failed test shows what each node said last.
        for n in &self.nodes {
            let log = std::fs::read_to_string(n.dir.join("stderr.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            eprintln!(
                "--- node {} (running: {}) stderr, last lines:",
                n.id,
                n.is_running()
            );
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}
