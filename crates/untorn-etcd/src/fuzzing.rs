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

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::run_decoders;
    use crate::format::{encode_key_value, KeyValue};

    #[test]
    fn decoders_survive_mutations() {
        // Deterministic mutations of real-shaped values (the fuzz target's stable twin).
        let kv = encode_key_value(&KeyValue {
            key: b"/registry/pods/ns-1/p".to_vec(),
            create_revision: 300,
            mod_revision: 70_000,
            version: 3,
            value: vec![0x42; 200],
            lease: 77,
        });
        let mut rng = untorn::fuzzing::Rng::new(0x9E37_79B9_7F4A_7C15);
        let mut next = || rng.next_u64();
        for _ in 0..20_000 {
            let mut m = kv.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() % m.len() as u64) as usize;
                m[i] = next() as u8;
            }
            let cut = (next() % (m.len() as u64 + 1)) as usize;
            run_decoders(&m[..cut]);
            run_decoders(&m);
        }
        for n in 0..64 {
            let b: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            run_decoders(&b);
        }
    }
}
