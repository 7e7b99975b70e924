//! openraft's network over plain TCP: one connection per (leader, peer) stream,
//! length-prefixed JSON frames (`untorn_raft::kv::{Rpc, Reply}`), reconnect on error.

use std::io;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use untorn_raft::kv::{KvConfig, Reply, Rpc, FRAME_BYTES_MAX};

pub struct Network;

impl RaftNetworkFactory<KvConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Peer {
        Peer {
            target,
            addr: node.addr.clone(),
            stream: None,
        }
    }
}

pub struct Peer {
    target: u64,
    addr: String,
    stream: Option<TcpStream>,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<u64, BasicNode, RaftError<u64, E>>;

impl Peer {
    async fn exchange(&mut self, rpc: &Rpc) -> io::Result<Reply> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
        }
        let s = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::other("no connection"))?;
        let body = serde_json::to_vec(rpc)?;
        let len = u32::try_from(body.len()).map_err(io::Error::other)?;
        s.write_all(&len.to_be_bytes()).await?;
        s.write_all(&body).await?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await?;
        let len = u32::from_be_bytes(len) as usize;
        if len > FRAME_BYTES_MAX {
            return Err(io::Error::other("frame too large"));
        }
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// One request/answer; a failed or timed-out exchange drops the connection (a late
    /// answer on it would be taken for the next request's).
    async fn call<E: std::error::Error>(
        &mut self,
        rpc: Rpc,
        ttl: Duration,
    ) -> Result<Reply, RPCError<u64, BasicNode, RaftError<u64, E>>> {
        let r = match tokio::time::timeout(ttl, self.exchange(&rpc)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "rpc timed out")),
        };
        r.map_err(|e| {
            self.stream = None;
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
            ) {
                RPCError::Unreachable(Unreachable::new(&e))
            } else {
                RPCError::Network(NetworkError::new(&e))
            }
        })
    }

    fn unexpected<E: std::error::Error>(
        reply: &Reply,
    ) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
        let e = io::Error::other(format!("unexpected reply {reply:?}"));
        RPCError::Network(NetworkError::new(&e))
    }
}

impl RaftNetwork<KvConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<KvConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcErr> {
        match self
            .call(Rpc::AppendEntries(rpc), option.hard_ttl())
            .await?
        {
            Reply::AppendEntries(Ok(r)) => Ok(r),
            Reply::AppendEntries(Err(e)) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(Self::unexpected(&other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<KvConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RpcErr<InstallSnapshotError>> {
        match self
            .call(Rpc::InstallSnapshot(rpc), option.hard_ttl())
            .await?
        {
            Reply::InstallSnapshot(Ok(r)) => Ok(r),
            Reply::InstallSnapshot(Err(e)) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(Self::unexpected(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RpcErr> {
        match self.call(Rpc::Vote(rpc), option.hard_ttl()).await? {
            Reply::Vote(Ok(r)) => Ok(r),
            Reply::Vote(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(Self::unexpected(&other)),
        }
    }
}
