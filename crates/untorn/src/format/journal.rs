//! The journal file `<db>.journal` (version 2): a generation marker at offset 0, then
//! commit records, each starting on a 512-byte boundary. All integers little-endian.
//!
//! Record header (512 bytes; the marker is a header alone):
//!
//! | offset | size | field          | meaning                                                          |
//! |-------:|-----:|----------------|------------------------------------------------------------------|
//! | 0      | 4    | hdr_crc        | CRC32C over bytes `[4, 512)`                                      |
//! | 4      | 4    | version        | 2                                                                |
//! | 8      | 8    | magic          | `UTJOURNL`                                                       |
//! | 16     | 16   | db_id          | the database this record belongs to                              |
//! | 32     | 8    | salt           | the generation                                                   |
//! | 40     | 8    | txid           | commit: the commit; marker: the base meta's txid                 |
//! | 48     | 1    | kind           | 0 generation marker, 1 commit                                    |
//! | 49     | 1    | flags          | bit 0 `SYNCED_COMMIT` (written with `Durability::Immediate`)      |
//! | 50     | 2    | reserved       | 0                                                                |
//! | 52     | 4    | page_size      | must equal the database's                                        |
//! | 56     | 4    | prev_crc       | hdr_crc of the previous record of this generation (marker: 0)     |
//! | 60     | 4    | aux_crc        | CRC32C over the aux bytes, padding included                      |
//! | 64     | 4    | body_crc       | CRC32C over each image's (checksum, extent_pages) pair, in order  |
//! | 68     | 4    | image_count    | page images in the body                                          |
//! | 72     | 8    | body_len       | bytes of page images (a multiple of the page size)               |
//! | 80     | 4    | aux_len        | bytes of aux before padding to 512                                |
//! | 84     | 4    | freed_count    | freed runs in aux                                                |
//! | 88     | 4    | direct_count   | direct-home extents in aux                                       |
//! | 92     | 4    | reserved       | 0                                                                |
//! | 96     | 8    | synced_through | highest txid whose record was synced before this one was written |
//! | 104    | 24   | root           | [`PageRef`]: commit: the new root; marker: the base meta's        |
//! | 128    | 8    | high_water     |                                                                  |
//! | 136    | 8    | next_bucket_id |                                                                  |
//! | 144    | 24   | freelist       | marker only: the base meta's freelist (commit: 0)                 |
//! | 168    | 8    | meta_seq       | marker only: the base meta's meta_seq                             |
//! | 176    | 4    | state          | marker only: the base meta's state                                |
//! | 180    | 332  | reserved       | 0                                                                |
//!
//! A commit record is `[header][aux, padded to 512][body: the images][trailer]`. Aux is
//! `freed_count` runs (`start u64, len u64`) then `direct_count` [`PageRef`]s. The trailer
//! (512 bytes) binds the whole record to its header:
//!
//! | offset | size | field      | meaning                                          |
//! |-------:|-----:|------------|--------------------------------------------------|
//! | 0      | 4    | trl_crc    | CRC32C over `[4, 512)`                            |
//! | 4      | 4    | version    | 2                                                |
//! | 8      | 8    | magic      | `UTJTRAIL`                                       |
//! | 16     | 16   | db_id      |                                                  |
//! | 32     | 8    | salt       |                                                  |
//! | 40     | 8    | txid       |                                                  |
//! | 48     | 4    | hdr_crc    | the header's checksum                            |
//! | 52     | 4    | aux_crc    |                                                  |
//! | 56     | 4    | body_crc   |                                                  |
//! | 60     | 4    | flags      | a copy of the header's flags                     |
//! | 64     | 8    | record_len | bytes from the header's start to the trailer's end |
//! | 72     | 440  | reserved   | 0                                                |
//!
//! A revocation sector (written over the header of a commit whose sync failed):
//! `crc u32` over `[4, 512)`, version, magic `UTJREVOK`, db_id at 16, salt at 32, txid at 40.

use super::bytes::{get_u32, get_u64, get_u8, put_bytes, put_u32, put_u64, put_u8, usize_from};
use super::ids::{BucketId, DbId, PageId, TxId};
use super::meta::{get_db_id, Meta, MetaState};
use super::page::{PageHeader, PageRef, PAGE_REF_SIZE};

/// Size of a journal sector: headers, markers, trailers and revocations are one sector,
/// and records start at multiples of it.
pub const RECORD_HEADER_SIZE: usize = 512;
/// Journal record magic.
pub const JOURNAL_MAGIC: &[u8; 8] = b"UTJOURNL";
/// Trailer magic.
pub const TRAILER_MAGIC: &[u8; 8] = b"UTJTRAIL";
/// Revocation magic.
pub const REVOKE_MAGIC: &[u8; 8] = b"UTJREVOK";
/// Journal format version.
pub const JOURNAL_VERSION: u32 = 2;
/// Header flag: the commit was written with `Durability::Immediate` (its sync was awaited).
pub const FLAG_SYNCED_COMMIT: u8 = 1;
/// Bytes of one freed run in aux.
pub const FREED_RUN_SIZE: usize = 16;

const SECTOR: u64 = RECORD_HEADER_SIZE as u64;

/// What a journal record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// The first record of a generation: a copy of the meta that starts it.
    Marker,
    /// A commit.
    Commit,
}

/// A decoded record header (a generation marker or a commit's header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Stored header checksum (what the next record chains to).
    pub hdr_crc: u32,
    /// The database the record belongs to.
    pub db_id: DbId,
    /// The generation.
    pub salt: u64,
    /// Commit: its txid; marker: the base meta's.
    pub txid: TxId,
    /// Marker or commit.
    pub kind: RecordKind,
    /// `FLAG_SYNCED_COMMIT` or 0.
    pub flags: u8,
    /// Page size of the database.
    pub page_size: u32,
    /// `hdr_crc` of the previous record of this generation (0 for the marker).
    pub prev_crc: u32,
    /// Checksum of the aux bytes.
    pub aux_crc: u32,
    /// Checksum binding the images (see [`body_crc`]).
    pub body_crc: u32,
    /// Page images in the body.
    pub image_count: u32,
    /// Body length in bytes.
    pub body_len: u64,
    /// Aux bytes before padding.
    pub aux_len: u32,
    /// Freed runs in aux.
    pub freed_count: u32,
    /// Direct-home extents in aux.
    pub direct_count: u32,
    /// Highest txid known durable when this record was written.
    pub synced_through: TxId,
    /// Commit: the new root; marker: the base meta's root.
    pub root: PageRef,
    /// The high-water mark after the commit (marker: the base meta's).
    pub high_water: PageId,
    /// The next bucket id after the commit (marker: the base meta's).
    pub next_bucket_id: BucketId,
    /// Marker only: the base meta's freelist.
    pub freelist: PageRef,
    /// Marker only: the base meta's meta_seq.
    pub meta_seq: u64,
    /// Marker only: the base meta's state (raw).
    pub state: u32,
}

fn seal_sector(b: &mut [u8; RECORD_HEADER_SIZE]) -> u32 {
    let [_, _, _, _, checksummed @ ..] = &*b;
    let crc = crc32c::crc32c(checksummed);
    let sealed = put_u32(b, 0, crc);
    debug_assert!(sealed, "a sector holds its checksum");
    crc
}

/// The sector's bytes if it is one whole sector with the given magic, version and a
/// matching checksum.
fn verified_sector<'a>(b: &'a [u8], magic: &[u8; 8]) -> Option<&'a [u8]> {
    let b = b.get(..RECORD_HEADER_SIZE)?;
    if b.get(8..16)? != magic.as_slice() || get_u32(b, 4)? != JOURNAL_VERSION {
        return None;
    }
    (crc32c::crc32c(b.get(4..)?) == get_u32(b, 0)?).then_some(b)
}

impl RecordHeader {
    /// The generation marker that starts the generation continuing `meta` (salt =
    /// `meta.journal_salt`): a verbatim copy of the meta.
    pub fn marker(meta: &Meta) -> RecordHeader {
        RecordHeader {
            hdr_crc: 0,
            db_id: meta.db_id,
            salt: meta.journal_salt,
            txid: meta.txid,
            kind: RecordKind::Marker,
            flags: 0,
            page_size: meta.page_size,
            prev_crc: 0,
            aux_crc: 0,
            body_crc: 0,
            image_count: 0,
            body_len: 0,
            aux_len: 0,
            freed_count: 0,
            direct_count: 0,
            synced_through: meta.txid,
            root: meta.root,
            high_water: meta.high_water,
            next_bucket_id: meta.next_bucket_id,
            freelist: meta.freelist,
            meta_seq: meta.meta_seq,
            state: meta.state.to_u32(),
        }
    }

    /// The base meta a marker carries (`None` for a commit or an invalid state).
    pub fn base_meta(&self) -> Option<Meta> {
        if self.kind != RecordKind::Marker {
            return None;
        }
        Some(Meta {
            txid: self.txid,
            page_size: self.page_size,
            root: self.root,
            freelist: self.freelist,
            high_water: self.high_water,
            db_id: self.db_id,
            meta_seq: self.meta_seq,
            journal_salt: self.salt,
            state: MetaState::from_u32(self.state)?,
            next_bucket_id: self.next_bucket_id,
        })
    }

    /// The meta after this commit, on top of `base` (identity, freelist and sequence are
    /// the base's: a commit changes the tree, the high-water mark and the bucket counter).
    pub fn commit_meta(&self, base: &Meta) -> Meta {
        Meta {
            txid: self.txid,
            root: self.root,
            high_water: self.high_water,
            next_bucket_id: self.next_bucket_id,
            ..*base
        }
    }

    /// Aux bytes padded to the sector size.
    pub fn aux_padded_len(&self) -> u64 {
        u64::from(self.aux_len).div_ceil(SECTOR) * SECTOR
    }

    /// Bytes the record occupies: header, padded aux, body and trailer (a marker: one sector).
    pub fn record_len(&self) -> u64 {
        match self.kind {
            RecordKind::Marker => SECTOR,
            RecordKind::Commit => SECTOR
                .saturating_add(self.aux_padded_len())
                .saturating_add(self.body_len)
                .saturating_add(SECTOR),
        }
    }

    /// Whether the commit was written with `Durability::Immediate`.
    pub fn synced_commit(&self) -> bool {
        self.flags & FLAG_SYNCED_COMMIT != 0
    }

    /// Encodes and seals the header (`hdr_crc` is ignored): the sealed bytes and their
    /// checksum, which the next record chains to.
    pub fn encode(&self) -> ([u8; RECORD_HEADER_SIZE], u32) {
        let mut b = [0u8; RECORD_HEADER_SIZE];
        let kind = match self.kind {
            RecordKind::Marker => 0,
            RecordKind::Commit => 1,
        };
        let written = put_u32(&mut b, 4, JOURNAL_VERSION)
            && put_bytes(&mut b, 8, JOURNAL_MAGIC)
            && put_bytes(&mut b, 16, &self.db_id.0)
            && put_u64(&mut b, 32, self.salt)
            && put_u64(&mut b, 40, self.txid.0)
            && put_u8(&mut b, 48, kind)
            && put_u8(&mut b, 49, self.flags)
            && put_u32(&mut b, 52, self.page_size)
            && put_u32(&mut b, 56, self.prev_crc)
            && put_u32(&mut b, 60, self.aux_crc)
            && put_u32(&mut b, 64, self.body_crc)
            && put_u32(&mut b, 68, self.image_count)
            && put_u64(&mut b, 72, self.body_len)
            && put_u32(&mut b, 80, self.aux_len)
            && put_u32(&mut b, 84, self.freed_count)
            && put_u32(&mut b, 88, self.direct_count)
            && put_u64(&mut b, 96, self.synced_through.0)
            && self.root.encode(&mut b, 104)
            && put_u64(&mut b, 128, self.high_water.0)
            && put_u64(&mut b, 136, self.next_bucket_id.0)
            && self.freelist.encode(&mut b, 144)
            && put_u64(&mut b, 168, self.meta_seq)
            && put_u32(&mut b, 176, self.state);
        // Every field lies inside the fixed-size header above.
        debug_assert!(written, "record header fields exceed the header");
        let crc = seal_sector(&mut b);
        (b, crc)
    }

    /// Decodes a header, returning `None` unless magic, version, checksum and kind are right.
    pub fn decode(b: &[u8]) -> Option<RecordHeader> {
        let b = verified_sector(b, JOURNAL_MAGIC)?;
        let kind = match get_u8(b, 48)? {
            0 => RecordKind::Marker,
            1 => RecordKind::Commit,
            _ => return None,
        };
        Some(RecordHeader {
            hdr_crc: get_u32(b, 0)?,
            db_id: get_db_id(b, 16)?,
            salt: get_u64(b, 32)?,
            txid: TxId(get_u64(b, 40)?),
            kind,
            flags: get_u8(b, 49)?,
            page_size: get_u32(b, 52)?,
            prev_crc: get_u32(b, 56)?,
            aux_crc: get_u32(b, 60)?,
            body_crc: get_u32(b, 64)?,
            image_count: get_u32(b, 68)?,
            body_len: get_u64(b, 72)?,
            aux_len: get_u32(b, 80)?,
            freed_count: get_u32(b, 84)?,
            direct_count: get_u32(b, 88)?,
            synced_through: TxId(get_u64(b, 96)?),
            root: PageRef::decode(b, 104)?,
            high_water: PageId(get_u64(b, 128)?),
            next_bucket_id: BucketId(get_u64(b, 136)?),
            freelist: PageRef::decode(b, 144)?,
            meta_seq: get_u64(b, 168)?,
            state: get_u32(b, 176)?,
        })
    }
}

/// A commit record's trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// The database.
    pub db_id: DbId,
    /// The generation.
    pub salt: u64,
    /// The commit.
    pub txid: TxId,
    /// The header this trailer closes.
    pub hdr_crc: u32,
    /// The header's aux checksum.
    pub aux_crc: u32,
    /// The header's body checksum.
    pub body_crc: u32,
    /// The header's flags.
    pub flags: u8,
    /// Bytes from the header's start to the trailer's end.
    pub record_len: u64,
}

impl Trailer {
    /// The trailer of the record `h` heads (whose `hdr_crc` is `hdr_crc`).
    pub fn of(h: &RecordHeader, hdr_crc: u32) -> Trailer {
        Trailer {
            db_id: h.db_id,
            salt: h.salt,
            txid: h.txid,
            hdr_crc,
            aux_crc: h.aux_crc,
            body_crc: h.body_crc,
            flags: h.flags,
            record_len: h.record_len(),
        }
    }

    /// Encodes and seals the trailer.
    pub fn encode(&self) -> [u8; RECORD_HEADER_SIZE] {
        let mut b = [0u8; RECORD_HEADER_SIZE];
        let written = put_u32(&mut b, 4, JOURNAL_VERSION)
            && put_bytes(&mut b, 8, TRAILER_MAGIC)
            && put_bytes(&mut b, 16, &self.db_id.0)
            && put_u64(&mut b, 32, self.salt)
            && put_u64(&mut b, 40, self.txid.0)
            && put_u32(&mut b, 48, self.hdr_crc)
            && put_u32(&mut b, 52, self.aux_crc)
            && put_u32(&mut b, 56, self.body_crc)
            && put_u32(&mut b, 60, u32::from(self.flags))
            && put_u64(&mut b, 64, self.record_len);
        debug_assert!(written, "trailer fields exceed the sector");
        seal_sector(&mut b);
        b
    }

    /// Decodes a trailer; `None` unless magic, version and checksum are right.
    pub fn decode(b: &[u8]) -> Option<Trailer> {
        let b = verified_sector(b, TRAILER_MAGIC)?;
        Some(Trailer {
            db_id: get_db_id(b, 16)?,
            salt: get_u64(b, 32)?,
            txid: TxId(get_u64(b, 40)?),
            hdr_crc: get_u32(b, 48)?,
            aux_crc: get_u32(b, 52)?,
            body_crc: get_u32(b, 56)?,
            flags: u8::try_from(get_u32(b, 60)?).ok()?,
            record_len: get_u64(b, 64)?,
        })
    }
}

/// A revocation: written over the header of a commit whose sync failed, so that the
/// record can never be replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// The database.
    pub db_id: DbId,
    /// The generation.
    pub salt: u64,
    /// The revoked commit.
    pub txid: TxId,
}

impl Revocation {
    /// Encodes and seals the sector.
    pub fn encode(&self) -> [u8; RECORD_HEADER_SIZE] {
        let mut b = [0u8; RECORD_HEADER_SIZE];
        let written = put_u32(&mut b, 4, JOURNAL_VERSION)
            && put_bytes(&mut b, 8, REVOKE_MAGIC)
            && put_bytes(&mut b, 16, &self.db_id.0)
            && put_u64(&mut b, 32, self.salt)
            && put_u64(&mut b, 40, self.txid.0);
        debug_assert!(written, "revocation fields exceed the sector");
        seal_sector(&mut b);
        b
    }

    /// Decodes a revocation sector.
    pub fn decode(b: &[u8]) -> Option<Revocation> {
        let b = verified_sector(b, REVOKE_MAGIC)?;
        Some(Revocation {
            db_id: get_db_id(b, 16)?,
            salt: get_u64(b, 32)?,
            txid: TxId(get_u64(b, 40)?),
        })
    }
}

/// What one journal sector holds, judged on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sector {
    /// All zeros (allocated, never written).
    Zeros,
    /// A verified record header (marker or commit).
    Header(RecordHeader),
    /// A verified trailer.
    Trailer(Trailer),
    /// A verified revocation.
    Revocation(Revocation),
    /// Anything else (a torn or damaged sector, or record contents).
    Other,
}

impl Sector {
    /// Classifies one sector's bytes.
    pub fn classify(b: &[u8]) -> Sector {
        if let Some(h) = RecordHeader::decode(b) {
            Sector::Header(h)
        } else if let Some(t) = Trailer::decode(b) {
            Sector::Trailer(t)
        } else if let Some(r) = Revocation::decode(b) {
            Sector::Revocation(r)
        } else if b.iter().all(|x| *x == 0) {
            Sector::Zeros
        } else {
            Sector::Other
        }
    }
}

/// The checksum binding a record's images to its header: a CRC32C over each image's page
/// checksum and extent length (both u32 little-endian), in body order. Every image is
/// verified by its own page checksum when the record is read back, so the record only has
/// to bind those images to this header (checksumming the image bytes twice buys nothing).
pub fn body_crc<'a>(images: impl IntoIterator<Item = &'a PageHeader>) -> u32 {
    images.into_iter().fold(0u32, |crc, h| {
        let mut pair = [0u8; 8];
        let written = put_u32(&mut pair, 0, h.checksum) && put_u32(&mut pair, 4, h.extent_pages);
        debug_assert!(written, "two u32s fit eight bytes");
        crc32c::crc32c_append(crc, &pair)
    })
}

/// Encodes aux: the freed runs then the direct-home extents, zero-padded to the sector
/// size. Returns the padded bytes and the unpadded length.
pub fn encode_aux(freed: &[(u64, u64)], direct: &[PageRef]) -> (Vec<u8>, usize) {
    let len = freed.len() * FREED_RUN_SIZE + direct.len() * PAGE_REF_SIZE;
    let padded = len.div_ceil(RECORD_HEADER_SIZE) * RECORD_HEADER_SIZE;
    let mut b = vec![0u8; padded];
    let mut written = true;
    for (i, (start, n)) in freed.iter().enumerate() {
        let off = i * FREED_RUN_SIZE;
        written &= put_u64(&mut b, off, *start) && put_u64(&mut b, off + 8, *n);
    }
    let base = freed.len() * FREED_RUN_SIZE;
    for (i, r) in direct.iter().enumerate() {
        written &= r.encode(&mut b, base + i * PAGE_REF_SIZE);
    }
    debug_assert!(written, "aux sized for its contents");
    (b, len)
}

/// A record's aux: the runs it freed and its direct-home extents.
pub type Aux = (Vec<(u64, u64)>, Vec<PageRef>);

/// Decodes aux bytes (`aux_len` of them) holding `freed_count` runs and `direct_count`
/// references; `None` if the counts do not match the length.
pub fn decode_aux(b: &[u8], freed_count: u32, direct_count: u32) -> Option<Aux> {
    let freed_n = usize_from(freed_count);
    let direct_n = usize_from(direct_count);
    let need = freed_n
        .checked_mul(FREED_RUN_SIZE)?
        .checked_add(direct_n.checked_mul(PAGE_REF_SIZE)?)?;
    if need != b.len() {
        return None;
    }
    let mut freed = Vec::with_capacity(freed_n);
    for i in 0..freed_n {
        let off = i * FREED_RUN_SIZE;
        freed.push((get_u64(b, off)?, get_u64(b, off + 8)?));
    }
    let base = freed_n * FREED_RUN_SIZE;
    let mut direct = Vec::with_capacity(direct_n);
    for i in 0..direct_n {
        direct.push(PageRef::decode(b, base + i * PAGE_REF_SIZE)?);
    }
    Some((freed, direct))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            txid: TxId(4),
            page_size: 4096,
            root: PageRef {
                page_id: PageId(2),
                txid: TxId(4),
                checksum: 1,
                extent_pages: 1,
            },
            freelist: PageRef::NULL,
            high_water: PageId(3),
            db_id: DbId([3; 16]),
            meta_seq: 5,
            journal_salt: 77,
            state: MetaState::Open,
            next_bucket_id: BucketId(9),
        }
    }

    #[test]
    fn marker_round_trips_the_base_meta() {
        let m = meta();
        let (enc, crc) = RecordHeader::marker(&m).encode();
        let dec = RecordHeader::decode(&enc).expect("decode");
        assert_eq!(dec.hdr_crc, crc);
        assert_eq!(dec.base_meta(), Some(m));
        assert_eq!(dec.record_len(), 512);
        let mut bad = enc;
        bad[200] ^= 1;
        assert!(RecordHeader::decode(&bad).is_none());
        assert_eq!(Sector::classify(&bad), Sector::Other);
        assert_eq!(Sector::classify(&[0u8; 512]), Sector::Zeros);
    }

    #[test]
    fn commit_header_trailer_revocation_and_aux_round_trip() {
        let h = RecordHeader {
            kind: RecordKind::Commit,
            flags: FLAG_SYNCED_COMMIT,
            txid: TxId(5),
            prev_crc: 9,
            body_len: 8192,
            image_count: 2,
            aux_len: 40,
            freed_count: 1,
            direct_count: 1,
            ..RecordHeader::marker(&meta())
        };
        let (enc, crc) = h.encode();
        let dec = RecordHeader::decode(&enc).expect("decode");
        assert_eq!(RecordHeader { hdr_crc: crc, ..h }, dec);
        assert_eq!(dec.record_len(), 512 + 512 + 8192 + 512);
        assert!(dec.synced_commit());
        let t = Trailer::of(&h, crc);
        assert_eq!(Trailer::decode(&t.encode()), Some(t));
        assert_eq!(Sector::classify(&t.encode()), Sector::Trailer(t));
        let r = Revocation {
            db_id: h.db_id,
            salt: h.salt,
            txid: h.txid,
        };
        assert_eq!(Sector::classify(&r.encode()), Sector::Revocation(r));
        let direct = [meta().root];
        let (aux, len) = encode_aux(&[(10, 2)], &direct);
        assert_eq!((aux.len(), len), (512, 40));
        assert_eq!(
            decode_aux(&aux[..len], 1, 1),
            Some((vec![(10, 2)], direct.to_vec()))
        );
        assert_eq!(decode_aux(&aux[..len], 2, 1), None);
    }
}
