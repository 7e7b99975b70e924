//! The snapshot file: every key/value pair and nested bucket of the state machine's
//! data bucket, as one checksummed stream. Byte order is big-endian throughout.
//!
//! ```text
//! offset  size  field
//! 0       16    magic "untorn-raft-snp1"
//! 16      4     meta_len: length of the JSON snapshot meta (at most 16 MiB)
//! 20      n     openraft's SnapshotMeta, JSON
//! ...           records, each starting with a tag byte:
//!               1 put:   key_len u32, value_len u32, key, value
//!               2 enter: name_len u32, name   (following records are inside bucket `name`)
//!               3 leave:                      (back to the parent bucket)
//!               0 end:   record_count u64     (records before this one)
//! last 4  4     CRC32C of every byte before it
//! ```
//!
//! A reader trusts nothing before the trailer verifies: lengths are bounded by untorn's
//! limits, nesting by `untorn::MAX_BUCKET_DEPTH`, and the data is loaded into a staging
//! bucket that becomes visible only in the commit made after the CRC matched.

use std::io::{self, Read, Write};

pub(crate) const MAGIC: &[u8; 16] = b"untorn-raft-snp1";
const META_LEN_MAX: u32 = 16 << 20;
const TAG_END: u8 = 0;
const TAG_PUT: u8 = 1;
const TAG_ENTER: u8 = 2;
const TAG_LEAVE: u8 = 3;

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn len_u32(n: usize, what: &str) -> io::Result<[u8; 4]> {
    u32::try_from(n).map(u32::to_be_bytes).map_err(|_| {
        invalid(format!(
            "{what} of {n} bytes is too long for a snapshot record"
        ))
    })
}

/// Writes a snapshot stream, computing its checksum on the way.
pub(crate) struct SnapWriter<W: Write> {
    w: W,
    crc: u32,
    records: u64,
    depth: usize,
}

impl<W: Write> SnapWriter<W> {
    pub(crate) fn new(w: W, meta_json: &[u8]) -> io::Result<Self> {
        let mut s = SnapWriter {
            w,
            crc: 0,
            records: 0,
            depth: 0,
        };
        s.write(MAGIC)?;
        s.write(&len_u32(meta_json.len(), "snapshot meta")?)?;
        s.write(meta_json)?;
        Ok(s)
    }

    fn write(&mut self, b: &[u8]) -> io::Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.w.write_all(b)
    }

    pub(crate) fn put(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.write(&[TAG_PUT])?;
        self.write(&len_u32(key.len(), "key")?)?;
        self.write(&len_u32(value.len(), "value")?)?;
        self.write(key)?;
        self.write(value)?;
        self.records += 1;
        Ok(())
    }

    pub(crate) fn enter(&mut self, name: &[u8]) -> io::Result<()> {
        self.write(&[TAG_ENTER])?;
        self.write(&len_u32(name.len(), "bucket name")?)?;
        self.write(name)?;
        self.records += 1;
        self.depth += 1;
        Ok(())
    }

    pub(crate) fn leave(&mut self) -> io::Result<()> {
        if self.depth == 0 {
            return Err(invalid("leave without a bucket to leave"));
        }
        self.write(&[TAG_LEAVE])?;
        self.records += 1;
        self.depth -= 1;
        Ok(())
    }

    /// Writes the trailer and returns the inner writer (not synced).
    pub(crate) fn finish(mut self) -> io::Result<W> {
        if self.depth != 0 {
            return Err(invalid("snapshot ends inside a nested bucket"));
        }
        self.write(&[TAG_END])?;
        let n = self.records.to_be_bytes();
        self.write(&n)?;
        let crc = self.crc.to_be_bytes();
        self.w.write_all(&crc)?;
        self.w.flush()?;
        Ok(self.w)
    }
}

/// One record of a snapshot stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record {
    Put(Vec<u8>, Vec<u8>),
    Enter(Vec<u8>),
    Leave,
    /// The trailer verified: the stream is complete and intact.
    End,
}

/// Reads a snapshot stream, copying every byte it reads to `tee` (the node's own
/// durable copy of a received snapshot) and verifying the trailer.
pub(crate) struct SnapReader<R: Read, T: Write> {
    r: R,
    tee: T,
    crc: u32,
    records: u64,
    depth: usize,
    done: bool,
}

impl<R: Read, T: Write> SnapReader<R, T> {
    /// Reads the header; returns the reader and the meta JSON.
    pub(crate) fn open(r: R, tee: T) -> io::Result<(Self, Vec<u8>)> {
        let mut s = SnapReader {
            r,
            tee,
            crc: 0,
            records: 0,
            depth: 0,
            done: false,
        };
        let mut magic = [0u8; 16];
        s.read(&mut magic)?;
        if &magic != MAGIC {
            return Err(invalid("not an untorn-raft snapshot (bad magic)"));
        }
        let len = s.read_u32()?;
        if len > META_LEN_MAX {
            return Err(invalid(format!("snapshot meta of {len} bytes")));
        }
        let meta = s.read_vec(len as usize)?;
        Ok((s, meta))
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.r.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                invalid("snapshot is truncated")
            } else {
                e
            }
        })?;
        self.crc = crc32c::crc32c_append(self.crc, buf);
        self.tee.write_all(buf)
    }

    fn read_u32(&mut self) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.read(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    fn read_vec(&mut self, len: usize) -> io::Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read(&mut v)?;
        Ok(v)
    }

    fn read_key(&mut self, what: &str) -> io::Result<Vec<u8>> {
        let len = self.read_u32()? as usize;
        if len == 0 || len > untorn::MAX_KEY_SIZE {
            return Err(invalid(format!("{what} of {len} bytes in snapshot")));
        }
        self.read_vec(len)
    }

    /// The next record; `Record::End` only after the count and CRC matched.
    pub(crate) fn next_record(&mut self) -> io::Result<Record> {
        if self.done {
            return Err(invalid("read past the end of the snapshot"));
        }
        let mut tag = [0u8; 1];
        self.read(&mut tag)?;
        let rec = match tag[0] {
            TAG_PUT => {
                let klen = self.read_u32()? as usize;
                let vlen = self.read_u32()? as usize;
                if klen == 0 || klen > untorn::MAX_KEY_SIZE || vlen > untorn::MAX_VALUE_SIZE {
                    return Err(invalid(format!(
                        "record with a {klen}-byte key and a {vlen}-byte value"
                    )));
                }
                let k = self.read_vec(klen)?;
                let v = self.read_vec(vlen)?;
                Record::Put(k, v)
            }
            TAG_ENTER => {
                if self.depth + 1 >= untorn::MAX_BUCKET_DEPTH {
                    return Err(invalid("snapshot buckets nested deeper than untorn allows"));
                }
                self.depth += 1;
                Record::Enter(self.read_key("bucket name")?)
            }
            TAG_LEAVE => {
                if self.depth == 0 {
                    return Err(invalid("snapshot leaves the data bucket"));
                }
                self.depth -= 1;
                Record::Leave
            }
            TAG_END => {
                let mut n = [0u8; 8];
                self.read(&mut n)?;
                let n = u64::from_be_bytes(n);
                let computed = self.crc;
                let mut crc = [0u8; 4];
                self.r
                    .read_exact(&mut crc)
                    .map_err(|_| invalid("snapshot is truncated"))?;
                self.tee.write_all(&crc)?;
                if u32::from_be_bytes(crc) != computed {
                    return Err(invalid("snapshot checksum mismatch"));
                }
                if n != self.records || self.depth != 0 {
                    return Err(invalid(format!(
                        "snapshot trailer counts {n} records, read {}",
                        self.records
                    )));
                }
                let mut extra = [0u8; 1];
                if self.r.read(&mut extra)? != 0 {
                    return Err(invalid("bytes after the snapshot trailer"));
                }
                self.done = true;
                return Ok(Record::End);
            }
            t => return Err(invalid(format!("unknown snapshot record tag {t}"))),
        };
        self.records += 1;
        Ok(rec)
    }

    pub(crate) fn into_tee(self) -> T {
        self.tee
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = SnapWriter::new(Vec::new(), b"{\"m\":1}").unwrap();
        w.put(b"a", b"1").unwrap();
        w.enter(b"nested").unwrap();
        w.put(b"b", b"").unwrap();
        w.leave().unwrap();
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> io::Result<(Vec<u8>, Vec<Record>, Vec<u8>)> {
        let (mut r, meta) = SnapReader::open(bytes, Vec::new())?;
        let mut recs = Vec::new();
        loop {
            let rec = r.next_record()?;
            let end = rec == Record::End;
            recs.push(rec);
            if end {
                return Ok((meta, recs, r.into_tee()));
            }
        }
    }

    #[test]
    fn round_trip_and_tee_copy() {
        let bytes = sample();
        let (meta, recs, copy) = read_all(&bytes).unwrap();
        assert_eq!(meta, b"{\"m\":1}");
        assert_eq!(
            recs,
            vec![
                Record::Put(b"a".to_vec(), b"1".to_vec()),
                Record::Enter(b"nested".to_vec()),
                Record::Put(b"b".to_vec(), Vec::new()),
                Record::Leave,
                Record::End
            ]
        );
        assert_eq!(copy, bytes, "the tee holds a byte-exact copy");
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_refused() {
        let bytes = sample();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(read_all(&bad).is_err(), "flip at byte {i} accepted");
            assert!(
                read_all(&bytes[..i]).is_err(),
                "truncation to {i} bytes accepted"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read_all(&longer).is_err(), "trailing garbage accepted");
    }
}
