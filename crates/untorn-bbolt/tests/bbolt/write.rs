//! The writer: files we build are clean for real bbolt and read back identically.

use untorn_bbolt::{BoltFile, WriteOptions};

use crate::common::*;

fn rewrite(page_size: u32, nofl: bool, inline: bool, fill: f64) {
    let dir = tempfile::tempdir().unwrap();
    let Some(src) = make_db(dir.path(), "src.db", 4096, false) else {
        return;
    };
    let data = untorn_bbolt::read_all(&BoltFile::open(&src).unwrap()).unwrap();
    let dst = dir.path().join("dst.db");
    let opts = WriteOptions {
        page_size,
        no_freelist_sync: nofl,
        fill_percent: fill,
        txid: 7,
        inline_buckets: inline,
    };
    let stats = untorn_bbolt::write_file(&dst, &data, &opts).unwrap();
    assert!(stats.keys > 3000);
    go_check(&dst).unwrap();
    assert_eq!(go_dump(&dst), go_dump(&src));
    let file = BoltFile::open(&dst).unwrap();
    assert_eq!(file.page_size(), page_size);
    assert_eq!(file.meta().txid, 7);
    assert_eq!(file.meta().no_freelist_sync(), nofl);
    let r = untorn_bbolt::check(&dst, 100).unwrap();
    assert_eq!(r.findings, vec![]);
    assert_eq!(r.high_water_mark, stats.pages);
}

#[test]
fn writer_4096_inline_synced() {
    rewrite(4096, false, true, 0.9);
}

#[test]
fn writer_8192_nofreelistsync_no_inline() {
    rewrite(8192, true, false, 0.5);
}

#[test]
fn writer_512_full_pages() {
    rewrite(512, false, true, 1.0);
}

#[test]
fn writer_65536() {
    rewrite(65536, false, true, 0.9);
}

#[test]
fn writer_empty_file_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    if fixture_bin().is_none() {
        return;
    }
    let dst = dir.path().join("empty.db");
    untorn_bbolt::write_file(&dst, &Default::default(), &WriteOptions::default()).unwrap();
    go_check(&dst).unwrap();
    assert!(go_dump(&dst).is_empty());
}

/// Progress is reported against the high-water mark, and a subtree walk checks only
/// its subtree (a file our writer built, so no peer is needed).
#[test]
fn check_reports_progress_and_walks_subtrees() {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let mut root = untorn_bbolt::BucketData::default();
    let mut entries = BTreeMap::new();
    for i in 0..200_000u32 {
        entries.insert(
            format!("key{i:08}").into_bytes(),
            untorn_bbolt::Value::Data(vec![7u8; 100]),
        );
    }
    root.bucket_mut(&[b"b".to_vec()]).unwrap().entries = entries;
    let path = dir.path().join("p.db");
    untorn_bbolt::write_file(&path, &root, &WriteOptions::default()).unwrap();
    let calls: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let seen = Arc::clone(&calls);
    let full = untorn_bbolt::check_with(
        &path,
        untorn_bbolt::CheckOptions {
            progress: Some(Box::new(move |done, total| {
                seen.lock().unwrap().push((done, total))
            })),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(full.findings.is_empty(), "{:?}", full.findings);
    let calls = calls.lock().unwrap();
    let hwm = BoltFile::open(&path).unwrap().hwm();
    assert!(calls.len() >= 2, "several progress calls: {calls:?}");
    assert!(calls.iter().all(|&(_, total)| total == hwm));
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0), "monotonic");
    assert_eq!(calls.last().unwrap().0, full.pages_checked);
    // The bucket's root page: a subtree walk sees fewer pages and no findings.
    let pages = untorn_bbolt::pages(&BoltFile::open(&path).unwrap());
    let branch = pages
        .iter()
        .filter(|p| p.kind == untorn::unstable::report::PageKind::Branch)
        .map(|p| p.id)
        .next()
        .unwrap();
    let sub = untorn_bbolt::check_with(
        &path,
        untorn_bbolt::CheckOptions {
            from_page: Some(branch),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(sub.findings.is_empty(), "{:?}", sub.findings);
    assert!(sub.pages_checked > 1 && sub.pages_checked < full.pages_checked);
}
