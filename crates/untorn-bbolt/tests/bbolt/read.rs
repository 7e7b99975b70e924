//! Files written by real bbolt: our reader sees exactly what bbolt sees.

use untorn::unstable::report::{PageKind, PageState};
use untorn_bbolt::{BoltFile, FreelistInfo};

use crate::common::*;

fn roundtrip(page_size: u32, nofl: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = make_db(dir.path(), "f.db", page_size, nofl) else {
        return;
    };
    let file = BoltFile::open(&db).unwrap();
    assert_eq!(file.page_size(), page_size);
    assert_eq!(file.meta().no_freelist_sync(), nofl);
    let theirs = go_dump(&db);
    let ours = our_dump(&file);
    assert!(theirs.len() > 3000, "fixture too small: {}", theirs.len());
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(ours, theirs);
    let report = untorn_bbolt::check(&db, 100).unwrap();
    assert!(
        report.is_ok(),
        "clean file has findings: {:#?}",
        report.findings
    );
    assert_eq!(report.findings, vec![]);
    let pages = untorn_bbolt::pages(&file);
    assert_eq!(pages.len() as u64, file.hwm());
    assert!(pages
        .iter()
        .all(|p| p.state != PageState::Leaked && p.state != PageState::Corrupt));
    assert!(pages.iter().any(|p| p.kind == PageKind::Overflow));
    if !nofl {
        assert!(pages.iter().any(|p| p.state == PageState::Free));
        assert!(matches!(
            untorn_bbolt::info(&file).freelist,
            FreelistInfo::Synced { .. }
        ));
    } else {
        assert_eq!(untorn_bbolt::info(&file).freelist, FreelistInfo::NotSynced);
    }
}

#[test]
fn dump_equals_bbolt_4096() {
    roundtrip(4096, false);
}

#[test]
fn dump_equals_bbolt_8192_nofreelistsync() {
    roundtrip(8192, true);
}

#[test]
fn dump_equals_bbolt_16384() {
    roundtrip(16384, false);
}

#[test]
fn inspection_api_on_real_file() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = make_db(dir.path(), "f.db", 4096, false) else {
        return;
    };
    let file = BoltFile::open(&db).unwrap();
    let top = untorn_bbolt::buckets(&file, &[]).unwrap();
    assert_eq!(
        top,
        vec![
            b"\x00\xfeb".to_vec(),
            b"alpha".to_vec(),
            b"big".to_vec(),
            b"empty".to_vec(),
            b"small".to_vec()
        ]
    );
    let alpha = vec![b"alpha".to_vec()];
    assert_eq!(
        untorn_bbolt::buckets(&file, &alpha).unwrap(),
        vec![b"nested".to_vec()]
    );
    let keys = untorn_bbolt::keys(&file, &alpha).unwrap();
    // 3000 keys, every 7th deleted, every 11th from 3 rewritten (some re-added).
    let expected = (0..3000).filter(|j| j % 7 != 0 || j % 11 == 3).count();
    assert_eq!(keys.len(), expected);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        untorn_bbolt::get(&file, &[b"small".to_vec()], b"s1").unwrap(),
        Some(b"v1".to_vec())
    );
    assert_eq!(
        untorn_bbolt::get(&file, &alpha, b"key0000000").unwrap(),
        None
    );
    assert!(untorn_bbolt::get(&file, &alpha, b"key0000001")
        .unwrap()
        .is_some());
    let deeper = vec![b"alpha".to_vec(), b"nested".to_vec(), b"deeper".to_vec()];
    assert_eq!(untorn_bbolt::keys(&file, &deeper).unwrap().len(), 5);
    assert!(matches!(
        untorn_bbolt::keys(&file, &[b"nope".to_vec()]),
        Err(untorn_bbolt::BoltError::BucketNotFound(_))
    ));
    // Every value bbolt lists is what get returns.
    for line in go_dump(&db)
        .iter()
        .filter(|l| l.starts_with("P "))
        .step_by(97)
    {
        let parts: Vec<&str> = line.split(' ').collect();
        let path: Vec<Vec<u8>> = parts[1].split('/').map(unhex).collect();
        let got = untorn_bbolt::get(&file, &path, &unhex(parts[2]))
            .unwrap()
            .unwrap();
        assert_eq!(hex(&got), parts[3]);
    }
    let info = untorn_bbolt::info(&file);
    assert!(info.metas[0].is_valid() && info.metas[1].is_valid());
    assert_eq!(info.txid, file.meta().txid);
    assert!(info.to_string().contains("active meta"));
    let stats = untorn_bbolt::stats(&file);
    assert_eq!(
        stats.keys as usize,
        go_dump(&db).iter().filter(|l| l.starts_with("P ")).count()
    );
    assert!(stats.leaf_pages > 10 && stats.branch_pages >= 1);
    let view = untorn_bbolt::page(&file, file.meta().root).unwrap();
    assert!(matches!(
        view.body,
        untorn_bbolt::PageBody::Leaf(_) | untorn_bbolt::PageBody::Branch(_)
    ));
    assert_eq!(view.raw.len() % 4096, 0);
    assert!(view.to_string().contains("page"));
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Opening a bbolt file with the untorn engine says it is (possibly) a bbolt file and
/// how to convert it, rather than a bare "not a database".
#[test]
fn the_engine_names_a_bbolt_file_as_such() {
    use untorn::{Database, Error};
    let dir = tempfile::tempdir().unwrap();
    let mut bolt = vec![0u8; 8192];
    bolt[16..20].copy_from_slice(&untorn_bbolt::format::MAGIC.to_le_bytes());
    let bolt_path = dir.path().join("bolt.db");
    std::fs::write(&bolt_path, bolt).unwrap();
    match Database::open(&bolt_path) {
        Err(Error::NotADatabase(msg)) => assert!(msg.contains("bbolt"), "{msg}"),
        other => panic!("expected NotADatabase, got {other:?}"),
    }
}
