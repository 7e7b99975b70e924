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
                        let claims = claimed
                            .map(|t| format!(" (it claims txid {t})"))
                            .unwrap_or_default();
                        damaged.push((
                            slot,
                            claimed,
                            format!("meta slot {slot} is invalid{claims}: {}", error_detail(&e)),
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
        // A damaged slot that is not in use and cannot hold commits newer than this
        // snapshot is a warning: a crash while a checkpoint wrote the meta leaves exactly
        // that (the journal still carries those commits), and the next checkpoint
        // rewrites the slot. A damaged slot in use, or one that claims a newer commit than
        // anything readable (commits may be lost), is an error.
        let active = self.src.active_slot().filter(|&s| s < 2);
        let in_use = active.and_then(|a| valid.get(slot_index(a)).copied().flatten());
        let snapshot_txid = self.meta.txid.get();
        for (slot, claimed, msg) in damaged {
            match (active, in_use) {
                (Some(a), Some(m)) if a != slot && claimed.is_none_or(|t| t <= snapshot_txid) => {
                    // Harmless, but the page itself is damaged: show it so in `map`.
                    self.set_flag(slot, CORRUPT);
                    self.push(
                        FindingKind::MetaFallback,
                        Some(slot),
                        &[slot],
                        format!(
                            "{msg}; slot {a} (txid {}) is in use, nothing newer is lost, and the next checkpoint rewrites slot {slot}",
                            m.txid
                        ),
                    )
                }
                (Some(a), Some(m)) if a != slot => {
                    self.push(FindingKind::MetaInvalid, Some(slot), &[slot], msg);
                    self.push(
                        FindingKind::MetaFallback,
                        Some(a),
                        &[a],
                        format!(
                            "slot {slot} is damaged; the older slot {a} (txid {}) is in use: commits after txid {} may be lost",
                            m.txid, snapshot_txid
                        ),
                    );
                }
                _ => self.push(FindingKind::MetaInvalid, Some(slot), &[slot], msg),
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
