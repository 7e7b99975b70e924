//! The superblock: the two meta slots (pages 0 and 1) of a data file. This module is the
//! one owner of finding the page size, choosing the newest valid meta, writing a new
//! database's metas, and advancing the meta into the slot that is not in use.
//!
//! Open, the raw-file checker ([`crate::check::RawSource`]) and the CLI's format
//! detection all go through [`choose`] and [`recognise`], so they agree on which meta a
//! file is at.
//!
//! **Invariant:** a new meta is only ever written into the slot that is *not* active,
//! after everything it references is synced (`advance`), so one valid meta survives
//! any crash.

use std::io;

use crate::error::{CorruptionKind, Error, Result};
use crate::format::meta::{has_magic, sniff_page_size, SNIFF_BYTES};
use crate::format::{
    is_valid_page_size, page_sizes, peek_extent_pages, verify_page, Meta, PageId, TxId,
    MIN_PAGE_SIZE,
};
use crate::storage::Storage;

/// One of the two meta slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Page 0.
    Zero,
    /// Page 1.
    One,
}

impl Slot {
    /// Both slots, in page order.
    pub const BOTH: [Slot; 2] = [Slot::Zero, Slot::One];

    /// The slot holding page `n`, if `n` is 0 or 1.
    pub fn from_page(n: u64) -> Option<Slot> {
        match n {
            0 => Some(Slot::Zero),
            1 => Some(Slot::One),
            _ => None,
        }
    }

    /// The other slot (where the next meta goes).
    pub fn other(self) -> Slot {
        match self {
            Slot::Zero => Slot::One,
            Slot::One => Slot::Zero,
        }
    }

    /// The slot's page id (0 or 1).
    pub fn page(self) -> u64 {
        match self {
            Slot::Zero => 0,
            Slot::One => 1,
        }
    }

    fn index(self) -> usize {
        match self {
            Slot::Zero => 0,
            Slot::One => 1,
        }
    }
}

/// The meta a file is at, and what the slots held.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The newest valid meta.
    pub meta: Meta,
    /// The slot it came from.
    pub slot: Slot,
    /// The file's page size.
    pub page_size: usize,
    /// Why each slot that did not decode was rejected.
    pub slot_errors: [Option<String>; 2],
}

impl Choice {
    /// Set when one slot was unusable and the other was chosen: says which and why.
    pub fn fallback(&self) -> Option<String> {
        let (bad, why) = Slot::BOTH
            .iter()
            .find_map(|s| Some((s, self.slot_errors.get(s.index())?.as_ref()?)))?;
        Some(format!(
            "meta slot {} is unusable ({why}); using slot {} at txid {}",
            bad.page(),
            self.slot.page(),
            self.meta.txid
        ))
    }

    /// Why `slot` was rejected, if it was.
    pub fn slot_error(&self, slot: Slot) -> Option<&str> {
        self.slot_errors.get(slot.index())?.as_deref()
    }
}

/// Reads `len` bytes at `offset`; `None` if the storage ends first.
fn read_or_short(s: &dyn Storage, offset: u64, len: usize) -> Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; len];
    match s.read_at(offset, &mut buf) {
        Ok(()) => Ok(Some(buf)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(Error::from_io(e)),
    }
}

/// The raw bytes of `slot` at `page_size` (one page); `UnexpectedEof` if the file ends first.
pub fn read_raw(data: &dyn Storage, slot: Slot, page_size: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; page_size];
    data.read_at(slot.page() * page_size as u64, &mut buf)?;
    Ok(buf)
}

/// The page sizes to try, most likely first: the one slot 0 names, the one slot 1 names
/// at its own offset (slot 0 may be destroyed), then every other.
fn candidate_page_sizes(data: &dyn Storage, head: Option<&[u8]>) -> Result<Vec<usize>> {
    let named = |bytes: &[u8]| {
        sniff_page_size(bytes)
            .filter(|p| is_valid_page_size(u64::from(*p)))
            .map(|p| p as usize)
    };
    let mut sizes: Vec<usize> = head.and_then(named).into_iter().collect();
    for ps in page_sizes() {
        let slot1 = read_or_short(data, ps as u64, SNIFF_BYTES)?;
        if slot1.as_deref().and_then(named) == Some(ps) && !sizes.contains(&ps) {
            sizes.push(ps);
        }
    }
    for ps in page_sizes() {
        if !sizes.contains(&ps) {
            sizes.push(ps);
        }
    }
    Ok(sizes)
}

/// Whether the storage holds an untorn database, judged by the magic of either meta
/// slot at any page size (a destroyed slot 0 does not hide it).
pub fn recognise(data: &dyn Storage) -> Result<bool> {
    // A file shorter than the sniffed bytes is judged by what it has.
    let len = data.len().map_err(Error::from_io)?;
    let head_len = usize::try_from(len).map_or(SNIFF_BYTES, |l| l.min(SNIFF_BYTES));
    if read_or_short(data, 0, head_len)?.is_some_and(|h| has_magic(&h)) {
        return Ok(true);
    }
    for ps in page_sizes() {
        if read_or_short(data, ps as u64, SNIFF_BYTES)?.is_some_and(|b| has_magic(&b)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Chooses the newest valid meta of the data file. The outer error is an I/O failure;
/// the inner one says why the file has no usable meta: `NotADatabase` (no untorn magic
/// anywhere and no untorn pages), `UnsupportedVersion`, or `Corrupted { kind: Meta }`.
pub fn choose(data: &dyn Storage) -> Result<std::result::Result<Choice, Error>> {
    let head = read_or_short(data, 0, MIN_PAGE_SIZE)?;
    let mut any_magic = head.as_deref().is_some_and(has_magic);
    let mut first_errors: Option<[Option<Error>; 2]> = None;
    for page_size in candidate_page_sizes(data, head.as_deref())? {
        let mut decode = |slot: Slot| -> Result<std::result::Result<Meta, Error>> {
            Ok(
                match read_or_short(data, slot.page() * page_size as u64, page_size)? {
                    Some(page) => {
                        any_magic |= has_magic(&page);
                        Meta::decode(&page, slot.page(), page_size)
                    }
                    None => Err(Error::corrupted(
                        slot.page(),
                        CorruptionKind::Meta,
                        "meta page beyond end of file",
                    )),
                },
            )
        };
        let decoded = [decode(Slot::Zero)?, decode(Slot::One)?];
        // The newest txid wins; on a tie, slot 0.
        let newest = match &decoded {
            [Ok(a), Ok(b)] if b.txid > a.txid => Some((Slot::One, *b)),
            [Ok(a), _] => Some((Slot::Zero, *a)),
            [Err(_), Ok(b)] => Some((Slot::One, *b)),
            [Err(_), Err(_)] => None,
        };
        let errors = decoded.map(|d| d.err());
        if let Some((slot, meta)) = newest {
            let choice = Choice {
                meta,
                slot,
                page_size,
                slot_errors: errors.map(|e| e.map(|e| e.to_string())),
            };
            if let Some(msg) = choice.fallback() {
                tracing::warn!("{msg}");
            }
            return Ok(Ok(choice));
        }
        first_errors.get_or_insert(errors);
    }
    if !any_magic {
        if let Some(ps) = untorn_pages_present(data)? {
            return Ok(Err(Error::corrupted(
                0,
                CorruptionKind::Meta,
                format!(
                    "both meta pages are destroyed, but the file holds untorn pages of {ps} bytes: \
                     `untorn check` reads it page by page and `untorn salvage` can recover what verifies"
                ),
            )));
        }
        return Ok(Err(Error::NotADatabase(
            "no untorn meta page found (wrong file type? the `untorn` CLI also reads, checks \
             and salvages bbolt (etcd) files: `untorn salvage SRC DST --to untorn` converts one)"
                .into(),
        )));
    }
    let Some([e0, e1]) = first_errors else {
        return Err(Error::Internal("no page size was tried"));
    };
    Ok(Err(match (e0, e1) {
        (Some(e @ Error::UnsupportedVersion(_)), _) => e,
        (e0, e1) => {
            let why = |e: Option<Error>| e.map_or_else(|| "?".to_owned(), |e| e.to_string());
            Error::corrupted(
                0,
                CorruptionKind::Meta,
                format!(
                    "both meta pages are damaged: slot 0: {}; slot 1: {}",
                    why(e0),
                    why(e1)
                ),
            )
        }
    }))
}

/// Whether pages after the metas verify as untorn pages at some page size (a damaged
/// untorn file rather than another file type). Probes a handful of pages.
fn untorn_pages_present(data: &dyn Storage) -> Result<Option<usize>> {
    for ps in page_sizes() {
        for id in 2..10u64 {
            let Some(page) = read_or_short(data, id * ps as u64, ps)? else {
                break;
            };
            let single_page = peek_extent_pages(&page) == Some(1);
            if single_page && verify_page(&page, PageId(id), ps).is_ok() {
                return Ok(Some(ps));
            }
        }
    }
    Ok(None)
}

/// Writes `meta` into `slot` and syncs.
pub(crate) fn write(data: &dyn Storage, slot: Slot, meta: &Meta) -> Result<()> {
    let page_size = meta.page_size as u64;
    data.write_at(slot.page() * page_size, &meta.encode(slot.page())?)
        .map_err(Error::from_io)?;
    data.sync().map_err(Error::from_io)
}

/// Makes `data` a new, empty database: both slots hold the initial meta.
pub(crate) fn initialise(data: &dyn Storage, page_size: usize) -> Result<()> {
    let meta = Meta::initial(
        u32::try_from(page_size).map_err(|_| Error::InvalidPageSize(page_size as u64))?,
    );
    data.set_len(0).map_err(Error::from_io)?;
    for slot in Slot::BOTH {
        data.write_at(slot.page() * page_size as u64, &meta.encode(slot.page())?)
            .map_err(Error::from_io)?;
    }
    data.sync().map_err(Error::from_io)
}

/// Advances the file to `meta`: writes it into the slot after `active` once the pages it
/// references are home and synced (the caller's job, see `recovery::write_home`), and
/// returns the new active slot.
pub(crate) fn advance(
    data: &dyn Storage,
    active: Slot,
    active_txid: TxId,
    meta: &Meta,
) -> Result<Slot> {
    if meta.txid <= active_txid {
        return Err(Error::Internal(
            "a new meta must be newer than the active one",
        ));
    }
    let slot = active.other();
    debug_assert_ne!(slot, active);
    write(data, slot, meta)?;
    Ok(slot)
}
