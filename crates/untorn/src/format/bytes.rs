//! Little-endian field access that never panics, for every on-disk format this
//! workspace reads (untorn's and, through `untorn-bbolt`, bbolt's).
//!
//! One idiom for both directions: a read returns `None` when the field lies outside the
//! buffer; a write returns `false` when it does (and writes nothing). Encoders fold the
//! write results and turn a `false` into an error, so a field that does not fit is never
//! silently dropped.

/// The `u8` at `off`.
#[inline]
pub fn get_u8(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

/// The little-endian `u16` at `off`.
#[inline]
pub fn get_u16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(get_array(b, off)?))
}

/// The little-endian `u32` at `off`.
#[inline]
pub fn get_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(get_array(b, off)?))
}

/// The little-endian `u64` at `off`.
#[inline]
pub fn get_u64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(get_array(b, off)?))
}

#[inline]
fn get_array<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..off.checked_add(N)?)?.try_into().ok()
}

/// Writes `v` at `off`; `false` (and nothing written) when out of range.
#[inline]
#[must_use]
pub fn put_u8(b: &mut [u8], off: usize, v: u8) -> bool {
    put_bytes(b, off, &[v])
}

/// Writes `v` little-endian at `off`; `false` (and nothing written) when out of range.
#[inline]
#[must_use]
pub fn put_u16(b: &mut [u8], off: usize, v: u16) -> bool {
    put_bytes(b, off, &v.to_le_bytes())
}

/// Writes `v` little-endian at `off`; `false` (and nothing written) when out of range.
#[inline]
#[must_use]
pub fn put_u32(b: &mut [u8], off: usize, v: u32) -> bool {
    put_bytes(b, off, &v.to_le_bytes())
}

/// Writes `v` little-endian at `off`; `false` (and nothing written) when out of range.
#[inline]
#[must_use]
pub fn put_u64(b: &mut [u8], off: usize, v: u64) -> bool {
    put_bytes(b, off, &v.to_le_bytes())
}

/// Copies `v` to `off`; `false` (and nothing written) when out of range.
#[inline]
#[must_use]
pub fn put_bytes(b: &mut [u8], off: usize, v: &[u8]) -> bool {
    match off.checked_add(v.len()).and_then(|end| b.get_mut(off..end)) {
        Some(dst) => {
            dst.copy_from_slice(v);
            true
        }
        None => false,
    }
}

/// `usize` from a `u32` read off disk: lossless on every target this crate builds for
/// (the assertion below refuses the others at compile time).
#[inline]
pub fn usize_from(v: u32) -> usize {
    const _: () = assert!(usize::BITS >= 32, "untorn needs at least 32-bit usize");
    v as usize
}

/// `u32` from an in-memory length the encoder has already bounded; `None` if it is not.
#[inline]
pub fn u32_from(v: usize) -> Option<u32> {
    u32::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_refuse_out_of_range() {
        let mut b = [0u8; 10];
        assert!(put_u64(&mut b, 2, 0x0102_0304_0506_0708));
        assert_eq!(get_u64(&b, 2), Some(0x0102_0304_0506_0708));
        assert_eq!(get_u16(&b, 2), Some(0x0708));
        assert!(!put_u32(&mut b, 7, 1), "crosses the end");
        assert_eq!(get_u32(&b, 7), None);
        assert_eq!(get_u64(&b, usize::MAX), None, "offset overflow");
        assert_eq!(b[7..], [0x03, 0x02, 0x01], "a refused write writes nothing");
    }
}
