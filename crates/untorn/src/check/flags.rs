//! [`PageFlags`]: the per-page state a checker keeps while it walks a file, one byte per
//! page id below the (bounded) high-water mark. Both checkers (untorn's and bbolt's)
//! keep their state in it; each defines what its bits mean.

/// One byte of flags per page id in `0..len`. Pages at or beyond `len` have no flags:
/// reading them gives 0 and setting them does nothing (a walk only claims pages below
/// the high-water mark, so such an id is already a finding of its own).
#[derive(Debug, Clone, Default)]
pub struct PageFlags {
    flags: Vec<u8>,
}

impl PageFlags {
    /// Flags for page ids `0..pages`, all clear.
    pub fn new(pages: usize) -> Self {
        PageFlags {
            flags: vec![0; pages],
        }
    }

    /// The number of page ids covered.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether no page id is covered.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// The index of `page`, if it is covered.
    pub fn index(&self, page: u64) -> Option<usize> {
        usize::try_from(page).ok().filter(|&i| i < self.flags.len())
    }

    /// The flags of `page`.
    pub fn get(&self, page: u64) -> u8 {
        self.index(page)
            .and_then(|i| self.flags.get(i).copied())
            .unwrap_or(0)
    }

    /// Sets `bits` on `page`.
    pub fn set(&mut self, page: u64, bits: u8) {
        if let Some(f) = self.index(page).and_then(|i| self.flags.get_mut(i)) {
            *f |= bits;
        }
    }

    /// Clears `bits` on `page`.
    pub fn clear(&mut self, page: u64, bits: u8) {
        if let Some(f) = self.index(page).and_then(|i| self.flags.get_mut(i)) {
            *f &= !bits;
        }
    }

    /// Every covered page id with its flags, in page order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u8)> + '_ {
        self.flags.iter().enumerate().map(|(i, f)| (i as u64, *f))
    }
}
