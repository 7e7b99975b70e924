//! Little-endian field access that never panics: reads return `None` out of bounds,
//! writes into buffers the encoder sized itself assert in debug builds.

#[inline]
pub(crate) fn get_u8(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

#[inline]
pub(crate) fn get_u32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

#[inline]
pub(crate) fn get_u64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

#[inline]
pub(crate) fn put_u8(b: &mut [u8], off: usize, v: u8) {
    let slot = b.get_mut(off);
    debug_assert!(slot.is_some(), "put_u8 out of bounds");
    if let Some(d) = slot {
        *d = v;
    }
}

#[inline]
pub(crate) fn put_u32(b: &mut [u8], off: usize, v: u32) {
    put_bytes(b, off, &v.to_le_bytes());
}

#[inline]
pub(crate) fn put_u64(b: &mut [u8], off: usize, v: u64) {
    put_bytes(b, off, &v.to_le_bytes());
}

#[inline]
pub(crate) fn put_bytes(b: &mut [u8], off: usize, v: &[u8]) {
    let end = off.saturating_add(v.len());
    let slot = b.get_mut(off..end);
    debug_assert!(slot.is_some(), "put_bytes out of bounds");
    if let Some(d) = slot {
        d.copy_from_slice(v);
    }
}

/// `usize` from a `u32` read off disk (lossless on the 32/64-bit targets we build for).
#[inline]
pub(crate) fn usz(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// `u32` from an in-memory length the encoder has already bounded.
#[inline]
pub(crate) fn u32_of(v: usize) -> u32 {
    debug_assert!(u32::try_from(v).is_ok(), "length does not fit u32");
    u32::try_from(v).unwrap_or(u32::MAX)
}
