//! Entry point shared by the cargo-fuzz target `etcd_decode` and the stable
//! mutation test: every etcd decoder (values, WAL frames, raft entries, requests) on
//! arbitrary bytes, never a panic, and a value that decodes re-encodes to bytes that
//! decode to the same value.

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
    // The write-ahead log: frames, records, entries and the requests they carry.
    let _ = format::request::decode_request(data);
    let _ = format::wal::decode_entry(data);
    let _ = format::wal::decode_wal_snapshot(data);
    let _ = format::wal::parse_wal_name(&String::from_utf8_lossy(data));
    let mut at = 0;
    while let Ok(Some(f)) = format::wal::read_frame(data, at) {
        if let Some(r) = data
            .get(f.start..f.end)
            .and_then(|b| format::wal::decode_record(b).ok())
        {
            let _ = format::wal::chain_crc(r.crc, r.data);
        }
        // Frames only move forward: the loop ends.
        assert!(f.next > at);
        at = f.next;
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
        // A WAL frame holding an entry whose request is a transaction with a compare,
        // a put and a nested transaction (the bytes etcd 3.4 writes for them).
        let put = [&[0x0a, 2][..], b"/k", &[0x12, 1], b"v"].concat();
        let nested = [&[0x12, 4 + 2], &[0x1a, 4][..], &[0x0a, 2], b"/k"].concat();
        let txn = [
            &[0x0a, 6, 0x10, 2, 0x1a, 2][..],
            b"/k",
            &[0x12, put.len() as u8 + 2, 0x12, put.len() as u8],
            &put,
            &[0x12, nested.len() as u8 + 2, 0x22, nested.len() as u8],
            &nested,
        ]
        .concat();
        let request = [&[0x32, txn.len() as u8][..], &txn].concat();
        let entry = [
            &[0x10, 2, 0x18, 77, 0x22, request.len() as u8][..],
            &request,
        ]
        .concat();
        let crc = crate::format::wal::chain_crc(0, &entry);
        let mut record = vec![0x08, 2, 0x10];
        let mut c = u64::from(crc);
        while c >= 0x80 {
            record.push((c as u8) | 0x80);
            c >>= 7;
        }
        record.push(c as u8);
        record.extend([0x1a, entry.len() as u8]);
        record.extend(&entry);
        let pad = (8 - record.len() % 8) % 8;
        let field = record.len() as u64
            | if pad > 0 {
                (0x80 | pad as u64) << 56
            } else {
                0
            };
        let mut frame = field.to_le_bytes().to_vec();
        frame.extend(&record);
        frame.extend(std::iter::repeat_n(0, pad));
        assert!(crate::format::request::decode_request(&request).is_ok());
        let mut rng = untorn::unstable::fuzzing::Rng::new(0x9E37_79B9_7F4A_7C15);
        let mut next = || rng.next_u64();
        for round in 0..30_000 {
            let mut m = match round % 3 {
                0 => kv.clone(),
                1 => frame.clone(),
                _ => request.clone(),
            };
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
