//! etcd's byte layouts, decoded defensively: the only module of the crate that knows
//! byte offsets (the tidy test keeps it so).
//!
//! Every decoder bounds-checks what it reads and returns a [`DecodeError`] naming the
//! byte offset; nothing here panics on file contents.
//!
//! - [`proto`]: the protobuf wire format (etcd's values and requests are protobuf).
//! - [`mvcc`]: revision keys and `mvccpb.KeyValue` (bucket `key`), the `meta` values.
//! - [`cluster`]: leases, auth users and roles, alarms, members.
//! - [`wal`]: the write-ahead log's frames, records, CRC chain and raft entries.
//! - [`request`]: the requests raft entries carry (puts, deletes, transactions).

pub mod cluster;
pub mod mvcc;
pub mod proto;
pub mod request;
pub mod wal;

pub use cluster::*;
pub use mvcc::*;
pub use proto::{DecodeError, Fields, WireValue};
