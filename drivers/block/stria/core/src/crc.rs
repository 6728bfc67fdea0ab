// SPDX-License-Identifier: GPL-2.0

//! CRC32C (Castagnoli), the checksum of every stria metadata block and of
//! strip data.
//!
//! Reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF:
//! the same function as the kernel's `crc32c()` with the customary
//! pre/post inversion, iSCSI and ext4, so that tools outside this code can
//! check our blocks. Slicing-by-8 (8 KiB of tables, built at compile time)
//! measured 1.7 GB/s against 1.2 GB/s for slicing-by-4 (4 KiB) and 0.4 GB/s
//! bytewise on the development machine, which matters because every
//! strip's data is checksummed on the write path. Where the kernel has a
//! faster `crc32c()` (CPU instructions), the driver may use it for strip
//! data instead: the values are the same.

/// Reflected CRC32C polynomial.
pub const POLY: u32 = 0x82F6_3B78;

// Runs at compile time only: an index out of range fails the build.
#[allow(clippy::indexing_slicing)]
const fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    // Table j advances a byte through j further zero bytes, which lets the
    // main loop fold eight input bytes with eight independent lookups.
    let mut j = 1;
    while j < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[j - 1][i];
            t[j][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        j += 1;
    }
    t
}

static TABLES: [[u32; 256]; 8] = make_tables();

/// Looks up the entry for the low byte of `idx`.
///
/// A byte always indexes a 256-entry table, so the fallback is dead code
/// that the optimiser removes; it only spares us an indexing panic path.
#[inline(always)]
fn t(table: &[u32; 256], idx: u32) -> u32 {
    table.get(usize::from(idx as u8)).copied().unwrap_or(0)
}

/// Continues a raw (not inverted) CRC state over `data`.
///
/// Use [`crc32c`] for a one-shot checksum; this form lets a caller feed a
/// buffer in several pieces: `!update(update(!0, a), b)` equals
/// `crc32c(a ++ b)`.
pub fn update(mut crc: u32, data: &[u8]) -> u32 {
    let [t0, t1, t2, t3, t4, t5, t6, t7] = &TABLES;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        // chunks_exact guarantees eight bytes; the default is never taken.
        let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
        let lo = (w as u32) ^ crc;
        let hi = (w >> 32) as u32;
        crc = t(t7, lo)
            ^ t(t6, lo >> 8)
            ^ t(t5, lo >> 16)
            ^ t(t4, lo >> 24)
            ^ t(t3, hi)
            ^ t(t2, hi >> 8)
            ^ t(t1, hi >> 16)
            ^ t(t0, hi >> 24);
    }
    for &b in words.remainder() {
        crc = (crc >> 8) ^ t(t0, crc ^ u32::from(b));
    }
    crc
}

/// CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    !update(!0, data)
}

/// CRC32C of `data` computed as if the four bytes at `off` were zero.
///
/// Metadata blocks store their own checksum inside the checksummed range;
/// this avoids copying the block to zero the field. Returns `None` when the
/// field does not lie inside `data`.
pub fn crc32c_skip_field(data: &[u8], off: usize) -> Option<u32> {
    let end = off.checked_add(4)?;
    let head = data.get(..off)?;
    let tail = data.get(end..)?;
    let crc = update(!0, head);
    let crc = update(crc, &[0; 4]);
    Some(!update(crc, tail))
}

#[cfg(test)]
mod tests {
    use super::super::vectors;
    use super::*;

    fn bitwise(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn known_answers() {
        for v in vectors::CRC32C {
            assert_eq!(crc32c(v.input), v.crc, "{:?}", v.input);
        }
    }

    #[test]
    fn matches_bitwise_for_all_lengths_and_alignments() {
        let data: std::vec::Vec<u8> = (0..300u32).map(|i| (i * 37 + 11) as u8).collect();
        for start in 0..9 {
            for end in start..data.len() {
                let s = &data[start..end];
                assert_eq!(crc32c(s), bitwise(s));
            }
        }
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data = [0x5au8; 100];
        let (a, b) = data.split_at(37);
        assert_eq!(!update(update(!0, a), b), crc32c(&data));
    }

    #[test]
    fn skip_field() {
        let mut data = [7u8; 64];
        let with = crc32c_skip_field(&data, 12).unwrap();
        data[12..16].copy_from_slice(&[0; 4]);
        assert_eq!(with, crc32c(&data));
        assert_eq!(crc32c_skip_field(&data, 61), None);
        assert_eq!(crc32c_skip_field(&data, usize::MAX), None);
    }
}
