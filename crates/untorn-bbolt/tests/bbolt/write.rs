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
