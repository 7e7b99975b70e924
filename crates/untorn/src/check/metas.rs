//! The check of both meta slots: which one is in use, and whether a damaged one can
//! hold commits newer than the snapshot (an error) or not (a warning).

use crate::format::meta::claimed_txid;
use crate::format::{Meta, TxId};
use crate::report::{FindingKind, PageKind};

use super::walk::{error_detail, Walk, CORRUPT};

impl Walk<'_> {
    // ---- metas -------------------------------------------------------------------

    pub(super) fn check_metas(&mut self) {
        let mut valid: [Option<Meta>; 2] = [None, None];
        let mut damaged: Vec<(u64, Option<u64>, String)> = Vec::new();
        for slot in 0..2u64 {
            match self.src.read_raw_meta(slot) {
                // Judged like a damaged slot below: an unreadable slot that is not in
                // use (a crash while the file was created) is a warning.
                Err(e) => damaged.push((
                    slot,
                    None,
                    format!("meta slot {slot} could not be read: {e}"),
                )),
                Ok(raw) => match Meta::decode(&raw, slot, self.page_size) {
                    Ok(m) => {
                        if let Some(v) = valid.get_mut(slot_index(slot)) {
                            *v = Some(m);
                        }
                    }
                    Err(e) => {
                        let claimed = claimed_txid(&raw).map(TxId::get);
                        damaged.push((
                            slot,
                            claimed,
                            format!("meta slot {slot} is invalid: {}", error_detail(&e)),
                        ));
                    }
                },
            }
            self.pages_done += 1;
            self.record(slot, PageKind::Meta, 0, 1);
        }
        if let Err(e) = self.meta.validate(0) {
            self.push(
                FindingKind::MetaInvalid,
                None,
                &[],
                format!("the snapshot's meta is inconsistent: {}", error_detail(&e)),
            );
        }
        if self.meta.page_size as usize != self.page_size {
            self.push(
                FindingKind::MetaInvalid,
                None,
                &[],
                format!(
                    "the snapshot's meta says page size {}, the source uses {}",
                    self.meta.page_size, self.page_size
                ),
            );
        }
        // A damaged slot is never presumed harmless: it is a warning only when the
        // superblock's evidence (the journal's generation marker) proves it holds nothing
        // newer than the snapshot, or restored it; otherwise it may have been the newer
        // meta and commits may be lost: an error.
        let active = self.src.active_slot().filter(|&s| s < 2);
        let in_use = active.and_then(|a| valid.get(slot_index(a)).copied().flatten());
        for (slot, claimed, msg) in damaged {
            match self.src.damaged_slot_note(slot) {
                Some(note) => {
                    // Harmless, but the page itself is damaged: show it so in `map`.
                    self.set_flag(slot, CORRUPT);
                    self.push(
                        FindingKind::MetaFallback,
                        Some(slot),
                        &[slot],
                        format!("{msg}; {note}; the next checkpoint rewrites slot {slot}"),
                    )
                }
                None => {
                    let offered = in_use.map_or_else(
                        || format!("txid {}", self.meta.txid),
                        |m| format!("slot {} (txid {})", 1 - slot, m.txid),
                    );
                    let claims = claimed
                        .map(|t| format!(" (it claims txid {t})"))
                        .unwrap_or_default();
                    self.push(
                        FindingKind::MetaInvalid,
                        Some(slot),
                        &[slot],
                        format!(
                            "{msg}; nothing proves it older than {offered}{claims}: commits after txid {} may be lost \
                             (`untorn recover FILE --rollback` accepts that and reports what it discards)",
                            self.meta.txid
                        ),
                    );
                }
            }
        }
        let (Some(active), Some(in_use)) = (active, in_use) else {
            return;
        };
        let other = 1 - active;
        let other_valid = valid.get(slot_index(other)).copied().flatten();
        if let Some(o) = other_valid {
            if o.txid > in_use.txid {
                self.push(
                    FindingKind::MetaFallback,
                    Some(active),
                    &[active],
                    format!(
                        "slot {active} (txid {}) is in use although slot {other} holds a newer valid meta (txid {})",
                        in_use.txid, o.txid
                    ),
                );
            }
        }
    }
}

/// Array index of a meta slot (0 or 1).
fn slot_index(slot: u64) -> usize {
    usize::from(slot != 0)
}
