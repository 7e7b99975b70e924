//! Values of etcd's other buckets.
//!
//! - `lease`: key = lease id (8 bytes, big-endian int64); value = `leasepb.Lease`
//!   {ID = 1 (int64), TTL = 2 (int64), RemainingTTL = 3 (int64)}.
//! - `members`: key = member id in hex; value = the member as JSON.
//!   `members_removed`: key = member id in hex; value `removed`.
//! - `cluster`: `clusterVersion` = a version string such as `3.4.0`.
//! - `auth`: `enabled` (1 byte: 1 on, 0 off), `authRevision` (8 bytes, big-endian).
//!   `authUsers`: key = user name; value = `authpb.User` {name = 1 (bytes), password
//!   = 2 (bytes), roles = 3 (repeated string), options = 4 (message)}.
//!   `authRoles`: key = role name; value = `authpb.Role` {name = 1 (bytes),
//!   keyPermission = 2 (repeated `Permission` {permType = 1 (enum), key = 2 (bytes),
//!   range_end = 3 (bytes)})}.
//! - `alarm`: key = `etcdserverpb.AlarmMember` {MemberID = 1 (uint64), Alarm = 2
//!   (enum: 1 NOSPACE, 2 CORRUPT)}; value empty.

use super::proto::{put_int_field, want_bytes, want_varint, DecodeError, Fields};

/// Decodes a lease bucket key (8 bytes, big-endian int64).
pub fn decode_lease_key(b: &[u8]) -> Result<i64, DecodeError> {
    let arr: [u8; 8] = b.try_into().map_err(|_| DecodeError::Size {
        len: b.len(),
        expected: 8,
    })?;
    Ok(i64::from_be_bytes(arr))
}

/// `leasepb.Lease`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lease {
    /// Lease id.
    pub id: i64,
    /// Granted TTL in seconds.
    pub ttl: i64,
    /// Remaining TTL in seconds when checkpointed (0 = not checkpointed).
    pub remaining_ttl: i64,
}

/// Decodes a `leasepb.Lease`.
pub fn decode_lease(b: &[u8]) -> Result<Lease, DecodeError> {
    let mut l = Lease::default();
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        match field {
            1 => l.id = want_varint(at, field, v)? as i64,
            2 => l.ttl = want_varint(at, field, v)? as i64,
            3 => l.remaining_ttl = want_varint(at, field, v)? as i64,
            _ => {}
        }
    }
    Ok(l)
}

/// Encodes a `leasepb.Lease`.
pub fn encode_lease(l: &Lease) -> Vec<u8> {
    let mut out = Vec::new();
    put_int_field(&mut out, 1, l.id);
    put_int_field(&mut out, 2, l.ttl);
    put_int_field(&mut out, 3, l.remaining_ttl);
    out
}

/// `authpb.User` (the password hash is not kept, only whether there is one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthUser {
    /// User name.
    pub name: Vec<u8>,
    /// Whether a password hash is stored.
    pub has_password: bool,
    /// Roles granted.
    pub roles: Vec<Vec<u8>>,
}

/// Decodes an `authpb.User`.
pub fn decode_auth_user(b: &[u8]) -> Result<AuthUser, DecodeError> {
    let mut u = AuthUser::default();
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        match field {
            1 => u.name = want_bytes(at, field, v)?.to_vec(),
            2 => u.has_password = !want_bytes(at, field, v)?.is_empty(),
            3 => u.roles.push(want_bytes(at, field, v)?.to_vec()),
            4 => {
                want_bytes(at, field, v)?;
            }
            _ => {}
        }
    }
    Ok(u)
}

/// One permission of an `authpb.Role`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permission {
    /// 0 read, 1 write, 2 readwrite.
    pub perm_type: u64,
    /// Key (or range start).
    pub key: Vec<u8>,
    /// Range end (empty = the single key).
    pub range_end: Vec<u8>,
}

/// `authpb.Role`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthRole {
    /// Role name.
    pub name: Vec<u8>,
    /// Key permissions.
    pub permissions: Vec<Permission>,
}

/// Decodes an `authpb.Role`.
pub fn decode_auth_role(b: &[u8]) -> Result<AuthRole, DecodeError> {
    let mut r = AuthRole::default();
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        match field {
            1 => r.name = want_bytes(at, field, v)?.to_vec(),
            2 => {
                let inner = want_bytes(at, field, v)?;
                let mut p = Permission::default();
                for g in Fields::new(inner) {
                    let (at2, f2, v2) = g?;
                    match f2 {
                        1 => p.perm_type = want_varint(at2, f2, v2)?,
                        2 => p.key = want_bytes(at2, f2, v2)?.to_vec(),
                        3 => p.range_end = want_bytes(at2, f2, v2)?.to_vec(),
                        _ => {}
                    }
                }
                r.permissions.push(p);
            }
            _ => {}
        }
    }
    Ok(r)
}

/// `etcdserverpb.AlarmMember` (a key of the `alarm` bucket).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlarmMember {
    /// Member id.
    pub member_id: u64,
    /// 1 NOSPACE, 2 CORRUPT.
    pub alarm: u64,
}

/// Decodes an `etcdserverpb.AlarmMember`.
pub fn decode_alarm(b: &[u8]) -> Result<AlarmMember, DecodeError> {
    let mut a = AlarmMember::default();
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        match field {
            1 => a.member_id = want_varint(at, field, v)?,
            2 => a.alarm = want_varint(at, field, v)?,
            _ => {}
        }
    }
    Ok(a)
}

/// A member record: its id from the key (hex) and the JSON value as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member id.
    pub id: u64,
    /// The stored JSON.
    pub json: String,
    /// The `"name"` field, when present.
    pub name: Option<String>,
}

/// Decodes a `members` entry: a hex id and a JSON object naming the same id.
pub fn decode_member(key: &[u8], value: &[u8]) -> Result<Member, DecodeError> {
    let id = decode_member_id(key)?;
    let json = std::str::from_utf8(value)
        .map_err(|e| DecodeError::Text(format!("member value is not UTF-8: {e}")))?
        .to_string();
    let trimmed = json.trim();
    if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
        return Err(DecodeError::Text(
            "member value is not a JSON object".into(),
        ));
    }
    if let Some(stored) = json_number_field(trimmed, "id") {
        if stored != id {
            return Err(DecodeError::Text(format!(
                "member key {id:x} holds the record of member {stored:x}"
            )));
        }
    }
    let name = json_string_field(trimmed, "name");
    Ok(Member { id, json, name })
}

/// Decodes a member id key (hex text).
pub fn decode_member_id(key: &[u8]) -> Result<u64, DecodeError> {
    let s =
        std::str::from_utf8(key).map_err(|_| DecodeError::Text("member key is not text".into()))?;
    if s.is_empty() || s.len() > 16 {
        return Err(DecodeError::Text(format!(
            "member key {s:?} is not a 64-bit hex id"
        )));
    }
    u64::from_str_radix(s, 16)
        .map_err(|_| DecodeError::Text(format!("member key {s:?} is not a hex id")))
}

/// The unsigned number after `"name":` in a flat JSON object, if any.
fn json_number_field(json: &str, name: &str) -> Option<u64> {
    let pat = format!("\"{name}\":");
    let at = json.find(&pat)? + pat.len();
    let rest = json.get(at..)?.trim_start();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// The string after `"name":` in a flat JSON object, if any (no escapes decoded).
fn json_string_field(json: &str, name: &str) -> Option<String> {
    let pat = format!("\"{name}\":\"");
    let at = json.find(&pat)? + pat.len();
    let rest = json.get(at..)?;
    let end = rest.find('"')?;
    rest.get(..end).map(str::to_string)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn lease_and_member() {
        let l = Lease {
            id: 7587869183544918294,
            ttl: 600,
            remaining_ttl: 0,
        };
        assert_eq!(decode_lease(&encode_lease(&l)).unwrap(), l);
        assert_eq!(decode_lease_key(&l.id.to_be_bytes()).unwrap(), l.id);
        let m = decode_member(
            b"886b03c4ae679a15",
            br#"{"id":9829954754940738069,"peerURLs":["http://127.0.0.1:24800"],"name":"peer0"}"#,
        )
        .unwrap();
        assert_eq!(m.id, 0x886b03c4ae679a15);
        assert_eq!(m.name.as_deref(), Some("peer0"));
        assert!(decode_member(b"886b03c4ae679a16", br#"{"id":9829954754940738069}"#).is_err());
        assert!(decode_member(b"zz", b"{}").is_err());
    }
}
