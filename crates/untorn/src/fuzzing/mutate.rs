//! The one set of byte mutators the mutation tests (engine, checker, CLI, bbolt) damage
//! valid files with: the kinds of damage disks do and files suffer.

use super::rng::Rng;

/// Bytes in a disk sector (the unit a torn or zeroed write loses).
const SECTOR: usize = 512;

/// Applies one random damage to `bytes` (a file of `page_size`-byte pages) and says what
/// it did, for failure messages:
///
/// - flipped bits anywhere (bit rot), or in a page's first 64 bytes (its header and
///   first elements);
/// - a zeroed sector (a lost or torn write) or a zeroed run of up to two pages;
/// - one page copied over another (a misdirected or stale write);
/// - eight garbage bytes at a random offset (a garbled field);
/// - the file truncated to a random length, or garbage appended.
pub fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, page_size: usize) -> String {
    let len = bytes.len();
    let pages = len / page_size.max(1);
    match rng.index(8) {
        0 => {
            let n = 1 + rng.index(8);
            for _ in 0..n {
                let off = rng.index(len);
                flip(rng, bytes, off);
            }
            format!("flip {n} bits")
        }
        1 if pages > 0 => {
            let p = rng.index(pages);
            let off = p * page_size + rng.index(64);
            flip(rng, bytes, off);
            format!("flip a header/element bit of page {p}")
        }
        2 => {
            let start = rng.index(len) / SECTOR * SECTOR;
            zero(bytes, start, SECTOR);
            format!("zero the sector at {start}")
        }
        3 => {
            let start = rng.index(len);
            let n = 1 + rng.index(2 * page_size);
            zero(bytes, start, n);
            format!("zero {start}..{}", start + n)
        }
        4 if pages > 1 => {
            let (a, b) = (rng.index(pages), rng.index(pages));
            let page = bytes
                .get(a * page_size..(a + 1) * page_size)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            if let Some(dst) = bytes.get_mut(b * page_size..(b + 1) * page_size) {
                dst.copy_from_slice(&page);
            }
            format!("copy page {a} over page {b}")
        }
        5 => {
            let start = rng.index(len);
            for b in bytes.iter_mut().skip(start).take(8) {
                *b = rng.byte();
            }
            format!("garbage at {start}")
        }
        6 => {
            let n = rng.index(len);
            bytes.truncate(n);
            format!("truncate to {n}")
        }
        _ => {
            let n = 1 + rng.index(3 * page_size.max(1));
            let tail: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            bytes.extend_from_slice(&tail);
            format!("append {n} garbage bytes")
        }
    }
}

fn flip(rng: &mut Rng, bytes: &mut [u8], off: usize) {
    let bit = rng.index(8);
    if let Some(b) = bytes.get_mut(off) {
        *b ^= 1 << bit;
    }
}

fn zero(bytes: &mut [u8], start: usize, n: usize) {
    for b in bytes.iter_mut().skip(start).take(n) {
        *b = 0;
    }
}
