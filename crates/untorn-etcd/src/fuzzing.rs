//! Entry point shared by the cargo-fuzz target `etcd_decode` and the stable
//! mutation test: every etcd decoder on arbitrary bytes, never a panic, and a value
//! that decodes re-encodes to bytes that decode to the same value.

use crate::format;

/// Runs every decoder on `data`.
pub fn run_decoders(data: &[u8]) {
    let _ = format::decode_rev_key(data);
    let _ = format::decode_revision_value(data);
    let _ = format::decode_be_u64(data);
    let _ = format::decode_lease_key(data);
    let _ = format::decode_auth_user(data);
    let _ = format::decode_auth_role(data);
    let _ = format::decode_alarm(data);
    let _ = format::partial_key(data);
    let _ = format::decode_member(data, data);
    if let Ok(kv) = format::decode_key_value(data) {
        let again = format::decode_key_value(&format::encode_key_value(&kv));
        assert_eq!(again.as_ref(), Ok(&kv), "KeyValue does not round-trip");
    }
    if let Ok(l) = format::decode_lease(data) {
        assert_eq!(format::decode_lease(&format::encode_lease(&l)), Ok(l));
    }
}
