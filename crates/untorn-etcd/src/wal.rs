//! Reading a data dir's write-ahead log (`member/wal/*.wal`, next to `member/snap/db`):
//! every raft entry still in the log, in index order, with the request it carries.
//!
//! The files are read in sequence order and their frames decoded with the CRC chain
//! checked record by record (the byte layouts are in [`crate::format::wal`]). A frame or
//! CRC that fails in the last file ends the log there (a torn tail: etcd cuts it too); in
//! an earlier file it is damage, reported in [`WalLog::problems`], and reading stops (an
//! entry after a gap could be mistaken for the one that produced a revision). An entry
//! whose index is already in the log replaces it and every later one, as raft does when
//! a new leader overwrites an uncommitted tail.

use std::path::{Path, PathBuf};

use crate::error::EtcdError;
use crate::format::request::{decode_request, Request};
use crate::format::wal::{
    chain_crc, decode_entry, decode_record, decode_wal_snapshot, parse_wal_name, read_frame,
    EntryKind, RECORD_CRC, RECORD_ENTRY, RECORD_SNAPSHOT,
};
use crate::format::DecodeError;

/// One raft entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalEntry {
    /// Raft index.
    pub index: u64,
    /// Raft term.
    pub term: u64,
    /// The request of a normal entry ([`Request::Other`] for a membership change), or why
    /// it does not decode.
    pub request: Result<Request, DecodeError>,
}

/// A write-ahead log read into memory.
#[derive(Debug, Clone, Default)]
pub struct WalLog {
    /// The directory read.
    pub dir: PathBuf,
    /// Its files, in sequence order.
    pub files: Vec<PathBuf>,
    /// The raft index the log continues from: the entry before its first one (0 for a
    /// log that starts at the cluster's first entry).
    pub start_index: u64,
    /// The entries, in index order without gaps.
    pub entries: Vec<WalEntry>,
    /// Damage that ended reading early (a bad frame or CRC before the last file's tail).
    pub problems: Vec<String>,
}

impl WalLog {
    /// The entries with raft index in `from..=to`.
    pub fn entries_between(&self, from: u64, to: u64) -> &[WalEntry] {
        let lo = self.entries.partition_point(|e| e.index < from);
        let hi = self.entries.partition_point(|e| e.index <= to);
        self.entries.get(lo..hi.max(lo)).unwrap_or(&[])
    }
}

/// The WAL directory of a data dir's backend file (`DATA/member/snap/db` →
/// `DATA/member/wal`), when it exists.
pub fn wal_dir_for(db: &Path) -> Option<PathBuf> {
    let snap = db.parent()?;
    if snap.file_name()? != "snap" {
        return None;
    }
    let wal = snap.parent()?.join("wal");
    wal.is_dir().then_some(wal)
}

/// Reads the write-ahead log in `dir`.
pub fn read_wal(dir: &Path) -> Result<WalLog, EtcdError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EtcdError::Io { path, source }
    };
    let wal_error = |reason: String| EtcdError::Wal {
        dir: dir.to_path_buf(),
        reason,
    };
    let mut named: Vec<(u64, u64, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let e = e.map_err(io(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some((seq, index)) = parse_wal_name(&name) {
            named.push((seq, index, e.path()));
        }
    }
    named.sort();
    if named.is_empty() {
        return Err(wal_error("no .wal files".into()));
    }
    for w in named.windows(2) {
        if let [(a, ia, _), (b, ib, _)] = w {
            if b.checked_sub(*a) != Some(1) || ib < ia {
                return Err(wal_error(format!(
                    "files out of sequence: {a:016x}-{ia:016x}.wal then {b:016x}-{ib:016x}.wal"
                )));
            }
        }
    }
    let mut log = WalLog {
        dir: dir.to_path_buf(),
        files: named.iter().map(|(_, _, p)| p.clone()).collect(),
        start_index: named.first().map_or(0, |(_, i, _)| *i),
        ..WalLog::default()
    };
    let mut crc = 0u32;
    let last = named.len().saturating_sub(1);
    'files: for (n, (_, _, path)) in named.iter().enumerate() {
        let bytes = std::fs::read(path).map_err(io(path))?;
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut at = 0usize;
        loop {
            let damage = |what: String| format!("{name} byte {at}: {what}");
            let frame = match read_frame(&bytes, at) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) if n == last => {
                    // A torn final frame: etcd cuts the log there too.
                    let _ = e;
                    break 'files;
                }
                Err(e) => {
                    log.problems.push(damage(e.to_string()));
                    break 'files;
                }
            };
            let record = match bytes.get(frame.start..frame.end).map(decode_record) {
                Some(Ok(r)) => r,
                Some(Err(e)) if n != last => {
                    log.problems.push(damage(e.to_string()));
                    break 'files;
                }
                _ => break 'files,
            };
            if record.kind == RECORD_CRC {
                if crc != 0 && record.crc != crc {
                    log.problems.push(damage(format!(
                        "the file continues the CRC chain from {:#010x}, the previous file ended at {crc:#010x}",
                        record.crc
                    )));
                    break 'files;
                }
                crc = record.crc;
            } else {
                let next = chain_crc(crc, record.data);
                if next != record.crc {
                    if n != last {
                        log.problems.push(damage(format!(
                            "record CRC {:#010x}, the chain gives {next:#010x}",
                            record.crc
                        )));
                    }
                    break 'files;
                }
                crc = next;
            }
            match record.kind {
                RECORD_SNAPSHOT if log.entries.is_empty() => {
                    if let Ok(s) = decode_wal_snapshot(record.data) {
                        log.start_index = s.index;
                    }
                }
                RECORD_ENTRY => {
                    let e = match decode_entry(record.data) {
                        Ok(e) => e,
                        Err(e) => {
                            log.problems
                                .push(damage(format!("entry does not decode: {e}")));
                            break 'files;
                        }
                    };
                    // A repeated index replaces the tail from there.
                    let keep = log.entries.partition_point(|x| x.index < e.index);
                    log.entries.truncate(keep);
                    match log.entries.last() {
                        // The first entry read: the log continues from the one before it.
                        None => log.start_index = e.index.saturating_sub(1),
                        Some(prev) if prev.index + 1 != e.index => {
                            log.problems.push(damage(format!(
                                "entry {} follows entry {} (a gap)",
                                e.index, prev.index
                            )));
                            break 'files;
                        }
                        Some(_) => {}
                    }
                    let request = match e.kind {
                        EntryKind::Normal if e.data.is_empty() => Ok(Request::Empty),
                        EntryKind::Normal => decode_request(e.data),
                        _ => Ok(Request::Other(0)),
                    };
                    log.entries.push(WalEntry {
                        index: e.index,
                        term: e.term,
                        request,
                    });
                }
                _ => {}
            }
            at = frame.next;
        }
    }
    Ok(log)
}
