//! The requests a raft entry carries: `etcdserverpb.InternalRaftRequest` and the parts
//! of it that change the key space (etcd 3.4's `raft_internal.proto` and `rpc.proto`).
//!
//! `InternalRaftRequest` (one field set per request):
//!
//! | field | number | what |
//! |-------|-------:|------|
//! | header | 100 | `RequestHeader` (ID 1, username 2, auth_revision 3) |
//! | ID | 1 | uint64 |
//! | v2 | 2 | a v2 store request (no revision) |
//! | range | 3 | `RangeRequest` (no revision) |
//! | put | 4 | `PutRequest` |
//! | delete_range | 5 | `DeleteRangeRequest` |
//! | txn | 6 | `TxnRequest` |
//! | compaction | 7 | `CompactionRequest` {revision 1 (int64), physical 2 (bool)} |
//! | lease_grant | 8 | `LeaseGrantRequest` {TTL 1, ID 2 (int64)} |
//! | lease_revoke | 9 | `LeaseRevokeRequest` {ID 1 (int64)}: deletes the lease's keys |
//! | alarm, lease_checkpoint, auth_*, cluster_* | 10, 11, 1000.., 1300.. | no revision |
//!
//! - `PutRequest`: key 1, value 2 (bytes), lease 3 (int64), prev_kv 4, ignore_value 5,
//!   ignore_lease 6 (bools).
//! - `DeleteRangeRequest`: key 1, range_end 2 (bytes), prev_kv 3 (bool). An empty
//!   range_end is the key alone; `"\0"` is every key from `key` on.
//! - `TxnRequest`: compare 1, success 2, failure 3 (repeated).
//!   `RequestOp`: one of request_range 1, request_put 2, request_delete_range 3,
//!   request_txn 4 (a nested `TxnRequest`).
//! - `Compare`: result 1 (enum: 0 EQUAL, 1 GREATER, 2 LESS, 3 NOT_EQUAL), target 2 (enum:
//!   0 VERSION, 1 CREATE, 2 MOD, 3 VALUE, 4 LEASE), key 3, one of version 4,
//!   create_revision 5, mod_revision 6 (int64), value 7 (bytes), lease 8 (int64);
//!   range_end 64 (bytes).
//!
//! Nested transactions are decoded without recursion: every `TxnRequest` of a request
//! goes into one list ([`Txn`]s refer to nested ones by index), at most
//! [`MAX_TXNS`] of them.

use super::proto::{want_bytes, want_varint, DecodeError, Fields, WireValue};

/// Most transactions (the top one and nested ones) one request may hold.
pub const MAX_TXNS: usize = 4096;

/// A decoded `InternalRaftRequest`, reduced to what changes the key space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// An empty entry (a new leader's first entry) or a request without fields.
    Empty,
    /// `put`.
    Put(PutRequest),
    /// `delete_range`.
    DeleteRange(DeleteRangeRequest),
    /// `txn`: `txns[0]` is the transaction, the rest are nested ones.
    Txn(Vec<Txn>),
    /// `compaction` (no revision).
    Compaction {
        /// Compact up to this revision.
        revision: i64,
    },
    /// `lease_grant` (no revision).
    LeaseGrant {
        /// The lease id.
        id: i64,
    },
    /// `lease_revoke`: deletes every key attached to the lease, in one revision.
    LeaseRevoke {
        /// The lease id.
        id: i64,
    },
    /// Anything else (range, alarm, auth, cluster, v2): no revision. The field number.
    Other(u64),
}

/// `PutRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutRequest {
    /// Key.
    pub key: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
    /// Lease id (0: none).
    pub lease: i64,
    /// Keep the key's current value.
    pub ignore_value: bool,
    /// Keep the key's current lease.
    pub ignore_lease: bool,
}

/// `DeleteRangeRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteRangeRequest {
    /// First key.
    pub key: Vec<u8>,
    /// End of the range (exclusive); empty: the key alone; `"\0"`: every key from `key`.
    pub range_end: Vec<u8>,
}

/// What a compare looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareTarget {
    /// The key's version.
    Version,
    /// Its create revision.
    Create,
    /// Its mod revision.
    Mod,
    /// Its value.
    Value,
    /// Its lease.
    Lease,
}

/// How a compare compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareResult {
    /// Equal.
    Equal,
    /// The key's is greater.
    Greater,
    /// The key's is less.
    Less,
    /// Not equal.
    NotEqual,
}

/// `Compare`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    /// How.
    pub result: CompareResult,
    /// What.
    pub target: CompareTarget,
    /// The key (or the first of a range).
    pub key: Vec<u8>,
    /// End of the range (as in [`DeleteRangeRequest`]).
    pub range_end: Vec<u8>,
    /// The number compared with (version, create, mod revision or lease).
    pub number: i64,
    /// The value compared with.
    pub value: Vec<u8>,
}

/// One operation of a transaction branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A read (changes nothing).
    Range,
    /// A put.
    Put(PutRequest),
    /// A delete.
    DeleteRange(DeleteRangeRequest),
    /// A nested transaction: an index into the request's transaction list.
    Txn(usize),
    /// A `RequestOp` with no request set.
    Empty,
}

/// `TxnRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    /// The guard.
    pub compare: Vec<Compare>,
    /// Run when every compare holds.
    pub success: Vec<Op>,
    /// Run otherwise.
    pub failure: Vec<Op>,
}

fn want_bool(at: usize, field: u64, v: WireValue<'_>) -> Result<bool, DecodeError> {
    Ok(want_varint(at, field, v)? != 0)
}

fn decode_put(b: &[u8]) -> Result<PutRequest, DecodeError> {
    let mut p = PutRequest::default();
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        match field {
            1 => p.key = want_bytes(at, field, v)?.to_vec(),
            2 => p.value = want_bytes(at, field, v)?.to_vec(),
            3 => p.lease = want_varint(at, field, v)? as i64,
            5 => p.ignore_value = want_bool(at, field, v)?,
            6 => p.ignore_lease = want_bool(at, field, v)?,
            _ => {}
        }
    }
    Ok(p)
}

fn decode_delete(b: &[u8]) -> Result<DeleteRangeRequest, DecodeError> {
    let mut d = DeleteRangeRequest::default();
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        match field {
            1 => d.key = want_bytes(at, field, v)?.to_vec(),
            2 => d.range_end = want_bytes(at, field, v)?.to_vec(),
            _ => {}
        }
    }
    Ok(d)
}

fn decode_compare(b: &[u8]) -> Result<Compare, DecodeError> {
    let mut c = Compare {
        result: CompareResult::Equal,
        target: CompareTarget::Version,
        key: Vec::new(),
        range_end: Vec::new(),
        number: 0,
        value: Vec::new(),
    };
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        match field {
            1 => {
                c.result = match want_varint(at, field, v)? {
                    0 => CompareResult::Equal,
                    1 => CompareResult::Greater,
                    2 => CompareResult::Less,
                    3 => CompareResult::NotEqual,
                    n => return Err(DecodeError::Text(format!("byte {at}: compare result {n}"))),
                }
            }
            2 => {
                c.target = match want_varint(at, field, v)? {
                    0 => CompareTarget::Version,
                    1 => CompareTarget::Create,
                    2 => CompareTarget::Mod,
                    3 => CompareTarget::Value,
                    4 => CompareTarget::Lease,
                    n => return Err(DecodeError::Text(format!("byte {at}: compare target {n}"))),
                }
            }
            3 => c.key = want_bytes(at, field, v)?.to_vec(),
            4..=6 | 8 => c.number = want_varint(at, field, v)? as i64,
            7 => c.value = want_bytes(at, field, v)?.to_vec(),
            64 => c.range_end = want_bytes(at, field, v)?.to_vec(),
            _ => {}
        }
    }
    Ok(c)
}

/// Decodes one `RequestOp`; a nested transaction's bytes are handed back to be
/// decoded into slot `next_txn`.
fn decode_op(b: &[u8], next_txn: usize) -> Result<(Op, Option<&[u8]>), DecodeError> {
    let mut op = (Op::Empty, None);
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        op = match field {
            1 => {
                want_bytes(at, field, v)?;
                (Op::Range, None)
            }
            2 => (Op::Put(decode_put(want_bytes(at, field, v)?)?), None),
            3 => (
                Op::DeleteRange(decode_delete(want_bytes(at, field, v)?)?),
                None,
            ),
            4 => (Op::Txn(next_txn), Some(want_bytes(at, field, v)?)),
            _ => continue,
        };
    }
    Ok(op)
}

/// Decodes a `TxnRequest` and every transaction nested in it, breadth first.
fn decode_txns(b: &[u8]) -> Result<Vec<Txn>, DecodeError> {
    let mut txns: Vec<Txn> = Vec::new();
    let mut queue: std::collections::VecDeque<&[u8]> = std::collections::VecDeque::new();
    queue.push_back(b);
    while let Some(bytes) = queue.pop_front() {
        let mut t = Txn::default();
        for f in Fields::new(bytes) {
            let (at, field, v) = f?;
            match field {
                1 => t.compare.push(decode_compare(want_bytes(at, field, v)?)?),
                2 | 3 => {
                    // Nested transactions take the slots after every one queued so far.
                    let slot = txns.len() + 1 + queue.len();
                    if slot >= MAX_TXNS {
                        return Err(DecodeError::Text(format!(
                            "byte {at}: more than {MAX_TXNS} nested transactions"
                        )));
                    }
                    let (op, nested) = decode_op(want_bytes(at, field, v)?, slot)?;
                    if let Some(n) = nested {
                        queue.push_back(n);
                    }
                    if field == 2 {
                        t.success.push(op);
                    } else {
                        t.failure.push(op);
                    }
                }
                _ => {}
            }
        }
        txns.push(t);
    }
    Ok(txns)
}

fn decode_id(b: &[u8], id_field: u64) -> Result<i64, DecodeError> {
    let mut id = 0;
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        if field == id_field {
            id = want_varint(at, field, v)? as i64;
        }
    }
    Ok(id)
}

/// Field number [`Request::Other`] carries for a v2 store request.
pub const V2_REQUEST: u64 = 2;

/// Decodes the request of a normal raft entry. etcd first tries an
/// `InternalRaftRequest` and, when that does not decode, applies the bytes as a v2
/// store request (`etcdserverpb.Request`: ID 1, Method 2 (string), Path 3, Val 4, ...),
/// which makes no revision: bytes that do not decode as the first but do as the second,
/// with a v2 method, are [`Request::Other`]`(`[`V2_REQUEST`]`)`.
pub fn decode_request(b: &[u8]) -> Result<Request, DecodeError> {
    match decode_internal(b) {
        Ok(r) => Ok(r),
        Err(e) if is_v2_request(b) => {
            let _ = e;
            Ok(Request::Other(V2_REQUEST))
        }
        Err(e) => Err(e),
    }
}

/// Whether `b` decodes as a v2 store request with one of the v2 methods.
fn is_v2_request(b: &[u8]) -> bool {
    const METHODS: &[&[u8]] = &[
        b"GET", b"QGET", b"PUT", b"POST", b"DELETE", b"SYNC", b"HEAD",
    ];
    let mut method = false;
    for f in Fields::new(b) {
        match f {
            Ok((_, 2, WireValue::Bytes(m))) => method = METHODS.contains(&m),
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    method
}

fn decode_internal(b: &[u8]) -> Result<Request, DecodeError> {
    let mut req = Request::Empty;
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        req = match field {
            // The header and the request id change nothing.
            1 | 100 => continue,
            4 => Request::Put(decode_put(want_bytes(at, field, v)?)?),
            5 => Request::DeleteRange(decode_delete(want_bytes(at, field, v)?)?),
            6 => Request::Txn(decode_txns(want_bytes(at, field, v)?)?),
            7 => Request::Compaction {
                revision: decode_id(want_bytes(at, field, v)?, 1)?,
            },
            8 => Request::LeaseGrant {
                id: decode_id(want_bytes(at, field, v)?, 2)?,
            },
            9 => Request::LeaseRevoke {
                id: decode_id(want_bytes(at, field, v)?, 1)?,
            },
            n => Request::Other(n),
        };
    }
    Ok(req)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::super::proto::{put_bytes_field, put_int_field};
    use super::*;

    fn msg(fields: &[(u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, b) in fields {
            put_bytes_field(&mut out, *n, b);
        }
        out
    }

    #[test]
    fn put_delete_and_nested_txn() {
        let mut put = msg(&[(1, b"/a"), (2, b"v")]);
        put_int_field(&mut put, 3, 7);
        let req = msg(&[(4, &put)]);
        assert_eq!(
            decode_request(&req).unwrap(),
            Request::Put(PutRequest {
                key: b"/a".to_vec(),
                value: b"v".to_vec(),
                lease: 7,
                ..PutRequest::default()
            })
        );
        let del = msg(&[(1, b"/a"), (2, b"/b")]);
        let mut cmp = msg(&[(3, b"/a")]);
        put_int_field(&mut cmp, 2, 2); // MOD
        put_int_field(&mut cmp, 6, 33);
        let inner = msg(&[(2, &msg(&[(3, &del)]))]);
        let txn = msg(&[
            (1, &cmp),
            (2, &msg(&[(2, &put)])),
            (2, &msg(&[(4, &inner)])),
            (3, &msg(&[(1, b"\x0a\x02/a")])),
        ]);
        let Request::Txn(txns) = decode_request(&msg(&[(6, &txn)])).unwrap() else {
            panic!("not a txn")
        };
        assert_eq!(txns.len(), 2);
        assert_eq!(txns[0].compare[0].target, CompareTarget::Mod);
        assert_eq!(txns[0].compare[0].number, 33);
        assert_eq!(txns[0].success[1], Op::Txn(1));
        assert_eq!(txns[0].failure, vec![Op::Range]);
        assert!(matches!(&txns[1].success[0], Op::DeleteRange(d) if d.range_end == b"/b"));
        // Every truncation is an error or a shorter request, never a panic.
        let whole = msg(&[(6, &txn)]);
        for n in 0..whole.len() {
            let _ = decode_request(&whole[..n]);
        }
        assert_eq!(decode_request(&[]).unwrap(), Request::Empty);
        // A v2 store request (what etcd 3.4 publishes its member attributes with).
        let mut v2 = Vec::new();
        put_int_field(&mut v2, 1, 99);
        put_bytes_field(&mut v2, 2, b"PUT");
        put_bytes_field(&mut v2, 3, b"/0/version");
        put_bytes_field(&mut v2, 4, b"3.4.0");
        assert_eq!(decode_request(&v2).unwrap(), Request::Other(V2_REQUEST));
    }
}
