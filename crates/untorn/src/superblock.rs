//! The superblock: the two meta slots (pages 0 and 1) of a data file, and the one owner
//! of choosing which meta a file is at. Open, the raw-file checker
//! ([`crate::check::RawSource`]) and the CLI's format detection all go through [`choose`]
//! and [`recognise`], so they agree.
//!
//! The choice (§3.6 of the format design, crash invariants J16–J20) never presumes damage
//! harmless: a slot that fails verification may be the newer one, and only evidence —
//! the journal's generation marker, which carries a verbatim copy of the meta that
//! started its generation — proves it older or restores it. Without evidence the choice
//! is refused with a typed error naming the slot and what a rollback would discard;
//! with `rollback` the newest intact state is chosen and the choice says what it gives up.
//!
//! **Invariant:** a meta with `meta_seq` s lives in slot `s % 2`, so a new meta (s + 1)
//! always goes into the slot that is not in use, after everything it references is
//! synced; one valid meta survives any crash (`write_meta` reads it back).
//!
//! Why this file is long: [`choose`]'s `decide` is one decision table over two slots,
//! the marker and the journal (J16–J20), kept in one function so that every case is read
//! against the others; the slot reading and writing around it are short.

use std::io;

use crate::error::{CorruptionKind, Error, Result};
use crate::format::meta::{claimed_db_id, claimed_txid, has_magic, sniff_page_size, SNIFF_BYTES};
use crate::format::{
    is_valid_page_size, page_sizes, peek_extent_pages, verify_page, DbId, Meta, MetaState, PageId,
    RecordHeader, RecordKind, TxId, MIN_PAGE_SIZE, RECORD_HEADER_SIZE,
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

/// What offset 0 of the journal holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// The journal is missing or empty.
    Missing,
    /// A valid generation marker.
    Valid(RecordHeader),
    /// No valid marker (a torn marker write, damage, or not a journal at all).
    Invalid,
}

/// Reads the journal's first sector.
pub fn read_marker(journal: &dyn Storage) -> Result<(u64, Marker)> {
    let len = journal.len().map_err(Error::from_io)?;
    if len == 0 {
        return Ok((0, Marker::Missing));
    }
    let Some(b) = read_or_short(journal, 0, RECORD_HEADER_SIZE)? else {
        return Ok((len, Marker::Invalid));
    };
    Ok((
        len,
        match RecordHeader::decode(&b) {
            Some(h) if h.kind == RecordKind::Marker && h.base_meta().is_some() => Marker::Valid(h),
            _ => Marker::Invalid,
        },
    ))
}

/// How the journal relates to the chosen base meta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalRelation {
    /// The marker starts the base's own generation: its records are scanned and replayed.
    Continues {
        /// The marker's checksum (the first record chains to it).
        marker_crc: u32,
    },
    /// The marker is of the generation the base retired (a crash after the base meta's
    /// sync, before its marker): every record in it is at or below the base's txid.
    Retired,
    /// Offset 0 holds no valid marker: a torn marker write, unless records of the base's
    /// generation follow (recovery checks).
    InvalidMarker,
    /// No journal, or one that holds nothing: accepted (clean close, or a rollback).
    Missing,
    /// The journal is not consulted or is set aside (a rollback, or a raw check without it).
    Ignored,
}

/// A choice that only a rollback makes, and what it gives up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackChoice {
    /// Why the strict choice refused (the error it would have returned).
    pub refusal: String,
    /// A damaged meta slot that may have been newer.
    pub damaged_slot: Option<u64>,
    /// The txid that slot claims, if its magic and version survived.
    pub claimed_txid: Option<u64>,
    /// Commits after this txid may exist and are given up, count unknown.
    pub unknown_after: Option<TxId>,
    /// The journal's contents are discarded (kept aside as evidence).
    pub discards_journal: bool,
}

/// The meta a file is at (its *base*), where it came from, and what the slots and the
/// journal showed.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The base meta.
    pub meta: Meta,
    /// The file's page size.
    pub page_size: usize,
    /// Why each slot that did not decode was rejected.
    pub slot_errors: [Option<String>; 2],
    /// Per damaged slot, the evidence that it is not newer than the base (a warning).
    pub proven: [Option<String>; 2],
    /// The base came from the journal's generation marker; its slot must be rewritten.
    pub restored_from_marker: bool,
    /// How the journal relates to the base.
    pub journal: JournalRelation,
    /// The journal's length in bytes (0: missing or empty).
    pub journal_len: u64,
    /// Things worth telling the user that lose nothing.
    pub warnings: Vec<String>,
    /// Set when only a rollback made this choice.
    pub rollback: Option<RollbackChoice>,
    /// Set when the data file is shorter than the base's high-water mark says.
    pub truncated: Option<String>,
}

impl Choice {
    /// The slot the base meta lives in (`meta_seq % 2`).
    pub fn slot(&self) -> Slot {
        if self.meta.slot() == 0 {
            Slot::Zero
        } else {
            Slot::One
        }
    }

    /// Why `slot` was rejected, if it was.
    pub fn slot_error(&self, slot: Slot) -> Option<&str> {
        self.slot_errors.get(slot.index())?.as_deref()
    }

    /// Why a damaged `slot` is known not to be newer than the base, if it is.
    pub fn proven(&self, slot: Slot) -> Option<&str> {
        self.proven.get(slot.index())?.as_deref()
    }

    /// Set when one slot was unusable and the base was chosen anyway: says which and why.
    pub fn fallback(&self) -> Option<String> {
        let (bad, why) = Slot::BOTH
            .iter()
            .find_map(|s| Some((s, self.slot_errors.get(s.index())?.as_ref()?)))?;
        let verdict = self
            .proven(*bad)
            .map_or_else(|| "nothing proves it older".to_owned(), str::to_owned);
        Some(format!(
            "meta slot {} is unusable ({why}); {verdict}; the base is txid {}{}",
            bad.page(),
            self.meta.txid,
            if self.restored_from_marker {
                " restored from the journal's generation marker"
            } else {
                ""
            }
        ))
    }
}

/// What [`choose`] decided.
#[derive(Debug, Clone)]
pub enum Chosen {
    /// Open at this base.
    Base(Box<Choice>),
    /// The database was never completely created (nothing was ever acknowledged): a
    /// read-write open initialises it again (crash invariant J11).
    Reinitialise(String),
}

/// Decodes both slots at the first page size where either decodes.
struct Slots {
    page_size: Option<usize>,
    decoded: [std::result::Result<Meta, Error>; 2],
    raw: [Option<Vec<u8>>; 2],
    any_magic: bool,
}

fn read_slots(data: &dyn Storage) -> Result<Slots> {
    let head = read_or_short(data, 0, MIN_PAGE_SIZE)?;
    let mut any_magic = head.as_deref().is_some_and(has_magic);
    let mut first: Option<Slots> = None;
    for page_size in candidate_page_sizes(data, head.as_deref())? {
        let mut raw: [Option<Vec<u8>>; 2] = [None, None];
        let mut decoded = [Slot::Zero, Slot::One].map(|_| {
            Err(Error::corrupted(
                0,
                CorruptionKind::Meta,
                "meta page beyond end of file",
            ))
        });
        for slot in Slot::BOTH {
            let page = read_or_short(data, slot.page() * page_size as u64, page_size)?;
            if let (Some(d), Some(p)) = (decoded.get_mut(slot.index()), &page) {
                any_magic |= has_magic(p);
                *d = Meta::decode(p, slot.page(), page_size);
            } else if let Some(d) = decoded.get_mut(slot.index()) {
                *d = Err(Error::corrupted(
                    slot.page(),
                    CorruptionKind::Meta,
                    "meta page beyond end of file",
                ));
            }
            if let Some(r) = raw.get_mut(slot.index()) {
                *r = page;
            }
        }
        let slots = Slots {
            page_size: Some(page_size),
            decoded,
            raw,
            any_magic,
        };
        if slots.decoded.iter().any(|d| d.is_ok()) {
            return Ok(Slots { any_magic, ..slots });
        }
        if first.is_none() {
            first = Some(slots);
        }
    }
    let mut s = first.ok_or(Error::Internal("no page size was tried"))?;
    s.any_magic = any_magic;
    // No slot decodes at any size: the page size is only known if a slot names it.
    s.page_size = head
        .as_deref()
        .and_then(sniff_page_size)
        .filter(|p| is_valid_page_size(u64::from(*p)))
        .map(|p| p as usize);
    Ok(s)
}

fn meta_err(detail: String) -> Error {
    Error::corrupted(0, CorruptionKind::Meta, detail)
}

/// Chooses the base meta of the data file (§3.6 of the format design), consulting the
/// journal's generation marker as evidence. `journal` is `None` when only the data file
/// is at hand (a raw check). With `rollback`, every refusal becomes a reported choice of
/// the newest intact state ([`Choice::rollback`]).
///
/// The outer error is an I/O failure; the inner one why no base can be chosen:
/// `NotADatabase`, `UnsupportedVersion`, `Corrupted { kind: Meta | Journal | OutOfRange }`,
/// `ForeignJournal`, `JournalMissing` or `MetaDamaged`.
pub fn choose(
    data: &dyn Storage,
    journal: Option<&dyn Storage>,
    rollback: bool,
) -> Result<std::result::Result<Chosen, Error>> {
    let slots = read_slots(data)?;
    let (journal_len, marker) = match journal {
        Some(j) => read_marker(j)?,
        None => (0, Marker::Missing),
    };
    Ok(decide(
        data,
        &slots,
        journal.is_some(),
        journal_len,
        marker,
        rollback,
    ))
}

fn decide(
    data: &dyn Storage,
    slots: &Slots,
    have_journal: bool,
    journal_len: u64,
    marker: Marker,
    rollback: bool,
) -> Result<Chosen, Error> {
    let [d0, d1] = &slots.decoded;
    let valid: [Option<Meta>; 2] = [d0.as_ref().ok().copied(), d1.as_ref().ok().copied()];
    let slot_errors: [Option<String>; 2] = [
        d0.as_ref().err().map(ToString::to_string),
        d1.as_ref().err().map(ToString::to_string),
    ];
    let claimed = |s: usize| -> (Option<u64>, Option<DbId>) {
        let raw = slots.raw.get(s).and_then(|r| r.as_deref());
        (
            raw.and_then(claimed_txid).map(TxId::get),
            raw.and_then(claimed_db_id),
        )
    };
    // The database's identity, from the metas.
    let data_id = match valid {
        [Some(a), Some(b)] if a.db_id != b.db_id => {
            return Err(meta_err(format!(
                "the meta slots belong to different databases ({} and {})",
                a.db_id, b.db_id
            )))
        }
        [Some(a), _] | [_, Some(a)] => Some(a.db_id),
        [None, None] => claimed(0).1.or(claimed(1).1),
    };
    let mut warnings = Vec::new();
    let mut rb: Option<RollbackChoice> = None;
    let refuse = |e: Error,
                  rb: &mut Option<RollbackChoice>,
                  slot: Option<u64>,
                  claimed_txid: Option<u64>| {
        if rollback {
            *rb = Some(RollbackChoice {
                refusal: e.to_string(),
                damaged_slot: slot,
                claimed_txid,
                unknown_after: None,
                discards_journal: journal_len > 0,
            });
            Ok(())
        } else {
            Err(e)
        }
    };
    // Rule 1: a journal of another database is never replayed.
    let mut marker = match marker {
        Marker::Valid(m) if data_id.is_some_and(|id| id != m.db_id) => {
            let e = Error::ForeignJournal {
                database: data_id.map(|i| i.to_string()).unwrap_or_default(),
                journal: m.db_id.to_string(),
            };
            refuse(e, &mut rb, None, None)?;
            Marker::Invalid
        }
        m => m,
    };
    let foreign_ignored = rb.is_some();
    let marker_meta = match marker {
        Marker::Valid(m) => m.base_meta(),
        _ => None,
    };
    let mut proven: [Option<String>; 2] = [None, None];
    let mut restored = false;
    let base = match valid {
        [Some(a), Some(b)] if a.state == MetaState::Creating || b.state == MetaState::Creating => {
            // Session start writes the first `open` meta; until then nothing was acknowledged.
            let newest = if b.meta_seq > a.meta_seq { b } else { a };
            if newest.state == MetaState::Creating {
                return Ok(Chosen::Reinitialise(
                    "both meta slots are in state `creating`: creation was interrupted and nothing was acknowledged".into(),
                ));
            }
            newest
        }
        [Some(a), Some(b)] => {
            let base = if (b.txid, b.meta_seq) > (a.txid, a.meta_seq) {
                b
            } else {
                a
            };
            if let Some(m) = marker_meta.filter(|m| m.meta_seq > base.meta_seq) {
                let e = Error::corrupted(
                    0,
                    CorruptionKind::Journal,
                    format!(
                        "the journal's generation starts at meta_seq {} (txid {}), newer than both metas \
                         (meta_seq {}, txid {}): the data file is older than its journal (restored from a backup?)",
                        m.meta_seq, m.txid, base.meta_seq, base.txid
                    ),
                );
                refuse(e, &mut rb, None, None)?;
                marker = Marker::Invalid;
            }
            base
        }
        [Some(v), None] | [None, Some(v)] if v.state == MetaState::Creating => {
            return Ok(Chosen::Reinitialise(format!(
                "the only valid meta (slot {}) is in state `creating`: creation was interrupted and nothing was acknowledged",
                v.slot()
            )));
        }
        [Some(v), None] | [None, Some(v)] => {
            let d = 1 - v.slot();
            let di = usize::from(d == 1);
            match marker_meta {
                Some(m) if m.journal_salt == v.journal_salt && m.meta_seq == v.meta_seq => {
                    if let Some(p) = proven.get_mut(di) {
                        *p = Some(format!(
                            "proven not newer: the journal continues slot {} (txid {})",
                            v.slot(),
                            v.txid
                        ));
                    }
                    v
                }
                Some(m) if m.meta_seq > v.meta_seq && m.slot() == d => {
                    restored = true;
                    warnings.push(format!(
                        "meta slot {d} is damaged; restored from the journal's generation marker (txid {}, meta_seq {})",
                        m.txid, m.meta_seq
                    ));
                    m
                }
                Some(m) if m.meta_seq < v.meta_seq => {
                    if let Some(p) = proven.get_mut(di) {
                        *p = Some(format!(
                            "older than slot {}: the journal is the generation slot {} retired (meta_seq {} < {})",
                            v.slot(),
                            v.slot(),
                            m.meta_seq,
                            v.meta_seq
                        ));
                    }
                    v
                }
                _ => {
                    let (claimed_txid, _) = claimed(di);
                    let e = Error::MetaDamaged {
                        slot: d,
                        other_slot: v.slot(),
                        other_slot_txid: v.txid.get(),
                        claimed_txid,
                        detail: slot_errors.get(di).cloned().flatten().unwrap_or_default(),
                    };
                    refuse(e, &mut rb, Some(d), claimed_txid)?;
                    if let Some(r) = rb.as_mut() {
                        r.unknown_after = Some(v.txid);
                    }
                    marker = Marker::Invalid;
                    v
                }
            }
        }
        [None, None] => match marker_meta {
            Some(m) => {
                restored = true;
                // The other slot held an older meta, or the one written after the marker's
                // (before its own marker): a state the marker's generation reproduces.
                if let Some(p) = proven.get_mut(usize::from(m.slot() == 0)) {
                    *p = Some(format!(
                        "not newer than what the journal holds: its generation marker (meta_seq {}) is the newest meta whose generation started",
                        m.meta_seq
                    ));
                }
                warnings.push(format!(
                    "both meta slots are damaged; restored slot {} from the journal's generation marker (txid {}, meta_seq {})",
                    m.slot(),
                    m.txid,
                    m.meta_seq
                ));
                m
            }
            None => {
                let data_len = data.len().map_err(Error::from_io)?;
                let ps_guess = slots.page_size.unwrap_or(MIN_PAGE_SIZE) as u64;
                if data_len == 0 {
                    return Err(Error::NotADatabase("the file is empty".into()));
                }
                // Only a file that is untorn's (a magic survives) or blank (nothing was
                // written yet) — never another format's small file.
                let blank_or_ours = slots.any_magic
                    || usize::try_from(data_len).ok().is_some_and(|n| {
                        read_or_short(data, 0, n)
                            .ok()
                            .flatten()
                            .is_some_and(|b| b.iter().all(|x| *x == 0))
                    });
                if data_len <= 2 * ps_guess && journal_len == 0 && blank_or_ours {
                    return Ok(Chosen::Reinitialise(
                        "no valid meta in a file of at most two pages and no journal: its creation was interrupted".into(),
                    ));
                }
                return Err(no_meta(data, slots));
            }
        },
    };
    let page_size = base.page_size as usize;
    if base.state == MetaState::Creating {
        return Ok(Chosen::Reinitialise(format!(
            "the newest meta (slot {}) is still in state `creating`: creation was interrupted and nothing was acknowledged",
            base.slot()
        )));
    }
    // Rule 5: the journal against the base.
    let ignored = foreign_ignored || rb.as_ref().is_some_and(|r| r.damaged_slot.is_some());
    let journal = if ignored || !have_journal {
        JournalRelation::Ignored
    } else if journal_len == 0 {
        if base.state == MetaState::Open {
            let e = Error::JournalMissing {
                txid: base.txid.get(),
            };
            refuse(e, &mut rb, None, None)?;
            if let Some(r) = rb.as_mut() {
                r.unknown_after = Some(base.txid);
            }
        } else {
            warnings.push("the journal is missing or empty; the database was closed cleanly, so nothing is lost (it is recreated)".into());
        }
        JournalRelation::Missing
    } else {
        match marker {
            Marker::Valid(m) if m.salt == base.journal_salt && m.meta_seq == base.meta_seq => {
                JournalRelation::Continues {
                    marker_crc: m.hdr_crc,
                }
            }
            Marker::Valid(m) if m.meta_seq < base.meta_seq => JournalRelation::Retired,
            Marker::Valid(m) => {
                let e = Error::corrupted(
                    0,
                    CorruptionKind::Journal,
                    format!(
                        "the journal's generation marker (meta_seq {}, salt {:#x}) does not belong to the base meta (meta_seq {}, salt {:#x})",
                        m.meta_seq, m.salt, base.meta_seq, base.journal_salt
                    ),
                );
                refuse(e, &mut rb, None, None)?;
                JournalRelation::Ignored
            }
            Marker::Invalid | Marker::Missing => JournalRelation::InvalidMarker,
        }
    };
    // Rule 6: every page of the base must be in the data file (the engine refuses a
    // truncated file; a raw check reads what is there and reports the rest).
    let data_len = data.len().map_err(Error::from_io)?;
    let need = base.high_water.get().saturating_mul(page_size as u64);
    let truncated = (data_len < need).then(|| {
        format!(
            "the data file is truncated: {data_len} bytes, but the meta (txid {}) needs {} pages ({need} bytes); \
             `untorn salvage` recovers what verifies",
            base.txid, base.high_water
        )
    });
    for (i, p) in proven.iter().enumerate() {
        if let Some(p) = p {
            warnings.push(format!(
                "meta slot {i} is damaged ({}); {p}",
                slot_errors.get(i).cloned().flatten().unwrap_or_default()
            ));
        }
    }
    Ok(Chosen::Base(Box::new(Choice {
        meta: base,
        page_size,
        slot_errors,
        proven,
        restored_from_marker: restored,
        journal,
        journal_len,
        warnings,
        rollback: rb,
        truncated,
    })))
}

/// The error for a file where no slot decodes and no marker helps.
fn no_meta(data: &dyn Storage, slots: &Slots) -> Error {
    if !slots.any_magic {
        let present = match untorn_pages_present(data) {
            Ok(p) => p,
            Err(e) => return e,
        };
        if let Some(ps) = present {
            return meta_err(format!(
                "both meta pages are destroyed, but the file holds untorn pages of {ps} bytes: \
                 `untorn check` reads it page by page and `untorn salvage` can recover what verifies"
            ));
        }
        return Error::NotADatabase(
            "no untorn meta page found (wrong file type? the `untorn` CLI also reads, checks \
             and salvages bbolt (etcd) files: `untorn salvage SRC DST --to untorn` converts one)"
                .into(),
        );
    }
    let [e0, e1] = &slots.decoded;
    if let Err(Error::UnsupportedVersion(v)) = e0 {
        return Error::UnsupportedVersion(*v);
    }
    let why = |e: &std::result::Result<Meta, Error>| {
        e.as_ref()
            .err()
            .map_or_else(|| "?".to_owned(), ToString::to_string)
    };
    meta_err(format!(
        "both meta pages are damaged: slot 0: {}; slot 1: {}; `untorn salvage` recovers what verifies",
        why(e0),
        why(e1)
    ))
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

/// Writes `meta` into its slot (`meta_seq % 2`), syncs, and reads it back: what was
/// written must decode to the meta intended (an encoder/decoder pairing assertion).
pub(crate) fn write_meta(data: &dyn Storage, meta: &Meta) -> Result<()> {
    let ps = meta.page_size as usize;
    let offset = PageId(meta.slot())
        .offset(ps)
        .ok_or(Error::Internal("meta offset overflows"))?;
    data.write_at(offset, &meta.encode()?)
        .map_err(Error::from_io)?;
    data.sync().map_err(Error::from_io)?;
    let mut back = vec![0u8; ps];
    data.read_at(offset, &mut back).map_err(Error::from_io)?;
    match Meta::decode(&back, meta.slot(), ps) {
        Ok(m) if m == *meta => Ok(()),
        _ => Err(Error::Internal(
            "the meta read back differs from the meta written",
        )),
    }
}

/// Step 1 of creating a database (§3.1): both slots hold the initial meta (state
/// `creating`, `meta_seq` 0 and 1, the new identity and first salt); synced. Returns the
/// meta of slot 1, the base of the first journal generation.
pub(crate) fn create_metas(
    data: &dyn Storage,
    page_size: usize,
    db_id: DbId,
    journal_salt: u64,
) -> Result<Meta> {
    let ps = u32::try_from(page_size).map_err(|_| Error::InvalidPageSize(page_size as u64))?;
    data.set_len(0).map_err(Error::from_io)?;
    let mut last = Meta::initial(ps, db_id, 0, journal_salt);
    for seq in 0..2u64 {
        last = Meta::initial(ps, db_id, seq, journal_salt);
        let offset = PageId(seq)
            .offset(page_size)
            .ok_or(Error::Internal("meta offset overflows"))?;
        data.write_at(offset, &last.encode()?)
            .map_err(Error::from_io)?;
    }
    data.sync().map_err(Error::from_io)?;
    Ok(last)
}

/// Both meta slots as read, each decoded and validated on its own (for `untorn surgery
/// meta validate`): the page size the file is read at, and per slot its meta or why it
/// does not verify. Read-only.
pub fn validate_slots(
    data: &dyn Storage,
) -> Result<(usize, [std::result::Result<Meta, String>; 2])> {
    let len = data.len().map_err(Error::from_io)?;
    let head_len = usize::try_from(len).map_or(SNIFF_BYTES, |l| l.min(SNIFF_BYTES));
    let head = read_or_short(data, 0, head_len)?;
    let sizes = candidate_page_sizes(data, head.as_deref())?;
    let decode = |ps: usize, slot: Slot| -> std::result::Result<Meta, String> {
        match read_raw(data, slot, ps) {
            Ok(page) => Meta::decode(&page, slot.page(), ps).map_err(|e| e.to_string()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err("the file ends before this slot".to_owned())
            }
            Err(e) => Err(format!("cannot read the slot: {e}")),
        }
    };
    // The first candidate size at which either slot verifies; else the most likely one.
    let ps = sizes
        .iter()
        .copied()
        .find(|&ps| decode(ps, Slot::Zero).is_ok() || decode(ps, Slot::One).is_ok())
        .or_else(|| sizes.first().copied())
        .ok_or(Error::Internal("no candidate page size"))?;
    Ok((ps, [decode(ps, Slot::Zero), decode(ps, Slot::One)]))
}
