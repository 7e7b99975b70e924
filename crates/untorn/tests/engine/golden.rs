//! The golden files: a small database checked in as bytes (`tests/golden/v2.untorn` and
//! its journal `tests/golden/v2.untorn.journal`), made by [`build`] with fixed ids and
//! salts, and decoded here field by field, at fixed byte offsets, against a table. Moving
//! a field in both the encoder and the decoder passes every other test; it fails this one.
//! A layout change is therefore a deliberate act: bump `FORMAT_VERSION` (and the journal's
//! version), then regenerate the files and the table with
//!
//! ```sh
//! UNTORN_REGENERATE_GOLDEN=1 cargo test -p untorn --test engine golden -- --nocapture
//! ```
//!
//! which rewrites the two files and prints the new table to paste below.

use std::path::PathBuf;
use std::sync::Arc;

use untorn::unstable::format::bytes::{get_u16, get_u32, get_u64, get_u8};
use untorn::unstable::format::{RecordHeader, RecordKind, RECORD_HEADER_SIZE};
use untorn::{Database, MemoryStorage, Storage};

const PS: usize = 4096;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The deterministic program behind the golden files: a database with a bucket, a nested
/// bucket and an overflow value, checkpointed, then one more commit left in the journal
/// (a crash). The journal is cut after its last record (the rest is pre-sized zeros).
fn build() -> (Vec<u8>, Vec<u8>) {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let db = Database::builder()
        .page_size(PS)
        .deterministic_ids(0x601D)
        .open_storage(
            Arc::new(data.clone()) as Arc<dyn Storage>,
            Arc::new(journal.clone()) as Arc<dyn Storage>,
            true,
        )
        .unwrap();
    db.update(|tx| {
        let b = tx.create_bucket("users")?;
        b.put("alice", "admin")?;
        b.put("bob", "reader")?;
        b.put("blob", vec![0x5au8; 5000])?;
        b.create_bucket("logins")?.put("0001", "2026-11-21")?;
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    db.checkpoint().unwrap();
    db.update(|tx| tx.bucket("users")?.unwrap().put("carol", "writer"))
        .unwrap();
    std::mem::forget(db);
    let mut j = journal.to_vec();
    let mut end = 0;
    while let Some(h) = j
        .get(end..end + RECORD_HEADER_SIZE)
        .and_then(RecordHeader::decode)
    {
        if end > 0 && h.kind == RecordKind::Marker {
            break;
        }
        end += h.record_len() as usize;
    }
    j.truncate(end);
    (data.to_vec(), j)
}

/// One row of the table: which file, byte offset, size in bytes, the field, its value.
type Field = (&'static str, usize, usize, &'static str, u64);

fn read(bytes: &[u8], off: usize, size: usize) -> Option<u64> {
    match size {
        1 => get_u8(bytes, off).map(u64::from),
        2 => get_u16(bytes, off).map(u64::from),
        4 => get_u32(bytes, off).map(u64::from),
        8 => get_u64(bytes, off),
        _ => None,
    }
}

/// The offsets every row of the table names (the layout under test).
fn layout(data: &[u8], journal: &[u8]) -> Vec<(&'static str, usize, usize, String)> {
    let mut rows = Vec::new();
    // Both meta slots: the page header and the meta body.
    for slot in 0..2usize {
        let m = slot * PS;
        for (off, size, name) in [
            (0, 4, "checksum"),
            (4, 1, "page_type"),
            (8, 8, "page_id"),
            (16, 8, "txid"),
            (24, 4, "extent_pages"),
            (32, 8, "payload_len"),
            (40, 8, "tree_id"),
            (48, 8, "magic"),
            (56, 4, "format_version"),
            (60, 4, "page_size"),
            (64, 8, "root.page_id"),
            (72, 8, "root.txid"),
            (80, 4, "root.checksum"),
            (84, 4, "root.extent_pages"),
            (88, 8, "freelist.page_id"),
            (112, 8, "high_water"),
            (120, 8, "db_id[0..8]"),
            (128, 8, "db_id[8..16]"),
            (136, 8, "meta_seq"),
            (144, 8, "journal_salt"),
            (152, 4, "state"),
            (160, 8, "next_bucket_id"),
        ] {
            rows.push(("data", m + off, size, format!("meta{slot}.{name}")));
        }
    }
    // The root page the newest meta names: a node page header and its first element.
    let newest = if get_u64(data, PS + 136) > get_u64(data, 136) {
        PS
    } else {
        0
    };
    let root = get_u64(data, newest + 64).unwrap_or(0) as usize * PS;
    for (off, size, name) in [
        (0, 4, "checksum"),
        (4, 1, "page_type"),
        (6, 2, "common_prefix_len"),
        (8, 8, "page_id"),
        (16, 8, "txid"),
        (24, 4, "extent_pages"),
        (28, 4, "count"),
        (32, 8, "payload_len"),
        (40, 8, "tree_id"),
        (48, 1, "element0.kind"),
        (50, 2, "element0.key_len"),
        (52, 4, "element0.val_len"),
        (56, 4, "element0.data_off"),
        (60, 4, "element0.key_prefix"),
    ] {
        rows.push(("data", root + off, size, format!("root_page.{name}")));
    }
    // The journal: the generation marker, the commit's header, its trailer.
    for (off, size, name) in [
        (0, 4, "hdr_crc"),
        (4, 4, "version"),
        (8, 8, "magic"),
        (16, 8, "db_id[0..8]"),
        (32, 8, "salt"),
        (40, 8, "txid"),
        (48, 1, "kind"),
        (52, 4, "page_size"),
        (56, 4, "prev_crc"),
        (96, 8, "synced_through"),
        (104, 8, "root.page_id"),
        (128, 8, "high_water"),
        (136, 8, "next_bucket_id"),
        (144, 8, "freelist.page_id"),
        (168, 8, "meta_seq"),
        (176, 4, "state"),
    ] {
        rows.push(("journal", off, size, format!("marker.{name}")));
    }
    let rec = RECORD_HEADER_SIZE;
    for (off, size, name) in [
        (0, 4, "hdr_crc"),
        (16, 8, "db_id[0..8]"),
        (32, 8, "salt"),
        (40, 8, "txid"),
        (48, 1, "kind"),
        (49, 1, "flags"),
        (56, 4, "prev_crc"),
        (60, 4, "aux_crc"),
        (64, 4, "body_crc"),
        (68, 4, "image_count"),
        (72, 8, "body_len"),
        (80, 4, "aux_len"),
        (84, 4, "freed_count"),
        (88, 4, "direct_count"),
        (96, 8, "synced_through"),
        (104, 8, "root.page_id"),
        (128, 8, "high_water"),
        (136, 8, "next_bucket_id"),
    ] {
        rows.push(("journal", rec + off, size, format!("commit.{name}")));
    }
    let trailer = journal.len().saturating_sub(RECORD_HEADER_SIZE);
    for (off, size, name) in [
        (0, 4, "trl_crc"),
        (4, 4, "version"),
        (8, 8, "magic"),
        (40, 8, "txid"),
        (48, 4, "hdr_crc"),
        (52, 4, "aux_crc"),
        (56, 4, "body_crc"),
        (60, 4, "flags"),
        (64, 8, "record_len"),
    ] {
        rows.push(("journal", trailer + off, size, format!("trailer.{name}")));
    }
    rows
}

/// The table: every field's value in the checked-in files.
const TABLE: &[Field] = &[
    // TABLE-START
    ("data", 0, 4, "meta0.checksum", 0xc9fbde00),
    ("data", 4, 1, "meta0.page_type", 0x1),
    ("data", 8, 8, "meta0.page_id", 0x0),
    ("data", 16, 8, "meta0.txid", 0x0),
    ("data", 24, 4, "meta0.extent_pages", 0x1),
    ("data", 32, 8, "meta0.payload_len", 0x78),
    ("data", 40, 8, "meta0.tree_id", 0x0),
    ("data", 48, 8, "meta0.magic", 0x42444e524f544e55),
    ("data", 56, 4, "meta0.format_version", 0x2),
    ("data", 60, 4, "meta0.page_size", 0x1000),
    ("data", 64, 8, "meta0.root.page_id", 0x0),
    ("data", 72, 8, "meta0.root.txid", 0x0),
    ("data", 80, 4, "meta0.root.checksum", 0x0),
    ("data", 84, 4, "meta0.root.extent_pages", 0x0),
    ("data", 88, 8, "meta0.freelist.page_id", 0x0),
    ("data", 112, 8, "meta0.high_water", 0x2),
    ("data", 120, 8, "meta0.db_id[0..8]", 0x7c9897cae4dceb65),
    ("data", 128, 8, "meta0.db_id[8..16]", 0x247518f812e2697),
    ("data", 136, 8, "meta0.meta_seq", 0x2),
    ("data", 144, 8, "meta0.journal_salt", 0xa18bb6f767f5575),
    ("data", 152, 4, "meta0.state", 0x1),
    ("data", 160, 8, "meta0.next_bucket_id", 0x2),
    ("data", 4096, 4, "meta1.checksum", 0x9479be91),
    ("data", 4100, 1, "meta1.page_type", 0x1),
    ("data", 4104, 8, "meta1.page_id", 0x1),
    ("data", 4112, 8, "meta1.txid", 0x1),
    ("data", 4120, 4, "meta1.extent_pages", 0x1),
    ("data", 4128, 8, "meta1.payload_len", 0x78),
    ("data", 4136, 8, "meta1.tree_id", 0x0),
    ("data", 4144, 8, "meta1.magic", 0x42444e524f544e55),
    ("data", 4152, 4, "meta1.format_version", 0x2),
    ("data", 4156, 4, "meta1.page_size", 0x1000),
    ("data", 4160, 8, "meta1.root.page_id", 0x6),
    ("data", 4168, 8, "meta1.root.txid", 0x1),
    ("data", 4176, 4, "meta1.root.checksum", 0x6407dd27),
    ("data", 4180, 4, "meta1.root.extent_pages", 0x1),
    ("data", 4184, 8, "meta1.freelist.page_id", 0x0),
    ("data", 4208, 8, "meta1.high_water", 0x7),
    ("data", 4216, 8, "meta1.db_id[0..8]", 0x7c9897cae4dceb65),
    ("data", 4224, 8, "meta1.db_id[8..16]", 0x247518f812e2697),
    ("data", 4232, 8, "meta1.meta_seq", 0x3),
    ("data", 4240, 8, "meta1.journal_salt", 0x48f342c9de21515d),
    ("data", 4248, 4, "meta1.state", 0x1),
    ("data", 4256, 8, "meta1.next_bucket_id", 0x4),
    ("data", 24576, 4, "root_page.checksum", 0x6407dd27),
    ("data", 24580, 1, "root_page.page_type", 0x3),
    ("data", 24582, 2, "root_page.common_prefix_len", 0x5),
    ("data", 24584, 8, "root_page.page_id", 0x6),
    ("data", 24592, 8, "root_page.txid", 0x1),
    ("data", 24600, 4, "root_page.extent_pages", 0x1),
    ("data", 24604, 4, "root_page.count", 0x1),
    ("data", 24608, 8, "root_page.payload_len", 0x45),
    ("data", 24616, 8, "root_page.tree_id", 0x1),
    ("data", 24624, 1, "root_page.element0.kind", 0x2),
    ("data", 24626, 2, "root_page.element0.key_len", 0x5),
    ("data", 24628, 4, "root_page.element0.val_len", 0x30),
    ("data", 24632, 4, "root_page.element0.data_off", 0x40),
    ("data", 24636, 4, "root_page.element0.key_prefix", 0x0),
    ("journal", 0, 4, "marker.hdr_crc", 0xe7477432),
    ("journal", 4, 4, "marker.version", 0x2),
    ("journal", 8, 8, "marker.magic", 0x4c4e52554f4a5455),
    ("journal", 16, 8, "marker.db_id[0..8]", 0x7c9897cae4dceb65),
    ("journal", 32, 8, "marker.salt", 0x48f342c9de21515d),
    ("journal", 40, 8, "marker.txid", 0x1),
    ("journal", 48, 1, "marker.kind", 0x0),
    ("journal", 52, 4, "marker.page_size", 0x1000),
    ("journal", 56, 4, "marker.prev_crc", 0x0),
    ("journal", 96, 8, "marker.synced_through", 0x1),
    ("journal", 104, 8, "marker.root.page_id", 0x6),
    ("journal", 128, 8, "marker.high_water", 0x7),
    ("journal", 136, 8, "marker.next_bucket_id", 0x4),
    ("journal", 144, 8, "marker.freelist.page_id", 0x0),
    ("journal", 168, 8, "marker.meta_seq", 0x3),
    ("journal", 176, 4, "marker.state", 0x1),
    ("journal", 512, 4, "commit.hdr_crc", 0x7a17a9a0),
    ("journal", 528, 8, "commit.db_id[0..8]", 0x7c9897cae4dceb65),
    ("journal", 544, 8, "commit.salt", 0x48f342c9de21515d),
    ("journal", 552, 8, "commit.txid", 0x2),
    ("journal", 560, 1, "commit.kind", 0x1),
    ("journal", 561, 1, "commit.flags", 0x1),
    ("journal", 568, 4, "commit.prev_crc", 0xe7477432),
    ("journal", 572, 4, "commit.aux_crc", 0xcce586d3),
    ("journal", 576, 4, "commit.body_crc", 0xeb3e5fc8),
    ("journal", 580, 4, "commit.image_count", 0x2),
    ("journal", 584, 8, "commit.body_len", 0x2000),
    ("journal", 592, 4, "commit.aux_len", 0x10),
    ("journal", 596, 4, "commit.freed_count", 0x1),
    ("journal", 600, 4, "commit.direct_count", 0x0),
    ("journal", 608, 8, "commit.synced_through", 0x1),
    ("journal", 616, 8, "commit.root.page_id", 0x8),
    ("journal", 640, 8, "commit.high_water", 0x9),
    ("journal", 648, 8, "commit.next_bucket_id", 0x4),
    ("journal", 9728, 4, "trailer.trl_crc", 0x21d01662),
    ("journal", 9732, 4, "trailer.version", 0x2),
    ("journal", 9736, 8, "trailer.magic", 0x4c494152544a5455),
    ("journal", 9768, 8, "trailer.txid", 0x2),
    ("journal", 9776, 4, "trailer.hdr_crc", 0x7a17a9a0),
    ("journal", 9780, 4, "trailer.aux_crc", 0xcce586d3),
    ("journal", 9784, 4, "trailer.body_crc", 0xeb3e5fc8),
    ("journal", 9788, 4, "trailer.flags", 0x1),
    ("journal", 9792, 8, "trailer.record_len", 0x2600),
    // TABLE-END
];

#[test]
fn golden_files_decode_field_by_field() {
    let dir = golden_dir();
    if std::env::var_os("UNTORN_REGENERATE_GOLDEN").is_some() {
        let (data, journal) = build();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("v2.untorn"), &data).unwrap();
        std::fs::write(dir.join("v2.untorn.journal"), &journal).unwrap();
        println!("    // TABLE-START");
        for (file, off, size, name) in layout(&data, &journal) {
            let bytes = if file == "data" { &data } else { &journal };
            let v = read(bytes, off, size).unwrap();
            println!("    ({file:?}, {off}, {size}, {name:?}, {v:#x}),");
        }
        println!("    // TABLE-END");
        return;
    }
    let data = std::fs::read(dir.join("v2.untorn")).unwrap();
    let journal = std::fs::read(dir.join("v2.untorn.journal")).unwrap();
    let rows = layout(&data, &journal);
    assert_eq!(rows.len(), TABLE.len(), "the table has a row per field");
    for ((file, off, size, name), want) in rows.iter().zip(TABLE) {
        assert_eq!(
            (*file, *off, *size, name.as_str()),
            (want.0, want.1, want.2, want.3),
            "the layout moved a field"
        );
        let bytes = if *file == "data" { &data } else { &journal };
        assert_eq!(
            read(bytes, *off, *size),
            Some(want.4),
            "{file} {name} at byte {off}"
        );
    }
}

#[test]
fn golden_files_are_what_the_engine_writes_today() {
    let dir = golden_dir();
    if std::env::var_os("UNTORN_REGENERATE_GOLDEN").is_some() {
        return;
    }
    let (data, journal) = build();
    assert!(
        std::fs::read(dir.join("v2.untorn")).unwrap() == data
            && std::fs::read(dir.join("v2.untorn.journal")).unwrap() == journal,
        "the engine no longer writes the golden files' bytes: if the layout changed on \
         purpose, bump the format version and regenerate (see this file's header)"
    );
}

#[test]
fn golden_files_open_and_read_back() {
    let dir = golden_dir();
    let data = MemoryStorage::from_bytes(std::fs::read(dir.join("v2.untorn")).unwrap());
    let journal = MemoryStorage::from_bytes(std::fs::read(dir.join("v2.untorn.journal")).unwrap());
    let db = Database::builder()
        .read_only(true)
        .open_storage(Arc::new(data), Arc::new(journal), false)
        .unwrap();
    assert_eq!(db.recovery_report().commits_replayed, 1);
    db.view(|tx| {
        let users = tx.bucket("users")?.unwrap();
        assert_eq!(users.get("carol")?.as_deref(), Some(&b"writer"[..]));
        assert_eq!(users.get("blob")?.map(|v| v.len()), Some(5000));
        let logins = users.bucket("logins")?.unwrap();
        assert_eq!(logins.get("0001")?.as_deref(), Some(&b"2026-11-21"[..]));
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    assert!(db.check(Default::default()).unwrap().is_ok());
}
