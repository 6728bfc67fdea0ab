// SPDX-License-Identifier: GPL-2.0

//! Bounds-checked little-endian field access over byte slices.
//!
//! Every on-disk field is read and written through these helpers with its
//! documented offset, so that a short or hostile buffer yields
//! [`FormatError::BufferTooSmall`] instead of a panic.

use super::error::FormatError;
use super::error::Result;

/// Borrows `N` bytes at `off` as a fixed array.
pub fn array<const N: usize>(buf: &[u8], off: usize) -> Result<[u8; N]> {
    let end = off.checked_add(N).ok_or(FormatError::Overflow)?;
    let bytes = buf.get(off..end).ok_or(FormatError::BufferTooSmall)?;
    bytes.try_into().map_err(|_| FormatError::BufferTooSmall)
}

/// Reads a byte at `off`.
pub fn get_u8(buf: &[u8], off: usize) -> Result<u8> {
    buf.get(off).copied().ok_or(FormatError::BufferTooSmall)
}

/// Reads a little-endian `u16` at `off`.
pub fn get_u16(buf: &[u8], off: usize) -> Result<u16> {
    Ok(u16::from_le_bytes(array(buf, off)?))
}

/// Reads a little-endian `u32` at `off`.
pub fn get_u32(buf: &[u8], off: usize) -> Result<u32> {
    Ok(u32::from_le_bytes(array(buf, off)?))
}

/// Reads a little-endian `u64` at `off`.
pub fn get_u64(buf: &[u8], off: usize) -> Result<u64> {
    Ok(u64::from_le_bytes(array(buf, off)?))
}

/// Copies `src` into `buf` at `off`.
pub fn put_bytes(buf: &mut [u8], off: usize, src: &[u8]) -> Result {
    let end = off.checked_add(src.len()).ok_or(FormatError::Overflow)?;
    let dst = buf.get_mut(off..end).ok_or(FormatError::BufferTooSmall)?;
    dst.copy_from_slice(src);
    Ok(())
}

/// Writes a byte at `off`.
pub fn put_u8(buf: &mut [u8], off: usize, v: u8) -> Result {
    put_bytes(buf, off, &[v])
}

/// Writes a little-endian `u16` at `off`.
pub fn put_u16(buf: &mut [u8], off: usize, v: u16) -> Result {
    put_bytes(buf, off, &v.to_le_bytes())
}

/// Writes a little-endian `u32` at `off`.
pub fn put_u32(buf: &mut [u8], off: usize, v: u32) -> Result {
    put_bytes(buf, off, &v.to_le_bytes())
}

/// Writes a little-endian `u64` at `off`.
pub fn put_u64(buf: &mut [u8], off: usize, v: u64) -> Result {
    put_bytes(buf, off, &v.to_le_bytes())
}

/// Returns the `len` bytes at `off`.
pub fn slice(buf: &[u8], off: usize, len: usize) -> Result<&[u8]> {
    let end = off.checked_add(len).ok_or(FormatError::Overflow)?;
    buf.get(off..end).ok_or(FormatError::BufferTooSmall)
}

/// Returns the `len` bytes at `off` for writing.
pub fn slice_mut(buf: &mut [u8], off: usize, len: usize) -> Result<&mut [u8]> {
    let end = off.checked_add(len).ok_or(FormatError::Overflow)?;
    buf.get_mut(off..end).ok_or(FormatError::BufferTooSmall)
}

/// True when every byte of `buf` is zero.
pub fn all_zero(buf: &[u8]) -> bool {
    buf.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_each_width() {
        let mut b = [0u8; 16];
        put_u8(&mut b, 0, 0xab).unwrap();
        put_u16(&mut b, 1, 0x1234).unwrap();
        put_u32(&mut b, 3, 0xdead_beef).unwrap();
        put_u64(&mut b, 7, 0x0102_0304_0506_0708).unwrap();
        assert_eq!(get_u8(&b, 0), Ok(0xab));
        assert_eq!(get_u16(&b, 1), Ok(0x1234));
        assert_eq!(get_u32(&b, 3), Ok(0xdead_beef));
        assert_eq!(get_u64(&b, 7), Ok(0x0102_0304_0506_0708));
        // Little-endian: lowest byte first.
        assert_eq!(b[1], 0x34);
        assert_eq!(b[7], 0x08);
    }

    #[test]
    fn short_buffers_are_errors() {
        let mut b = [0u8; 4];
        assert_eq!(get_u64(&b, 0), Err(FormatError::BufferTooSmall));
        assert_eq!(get_u32(&b, 1), Err(FormatError::BufferTooSmall));
        assert_eq!(get_u8(&b, 4), Err(FormatError::BufferTooSmall));
        assert_eq!(put_u16(&mut b, 3, 1), Err(FormatError::BufferTooSmall));
        assert_eq!(get_u16(&b, usize::MAX), Err(FormatError::Overflow));
        assert_eq!(slice(&b, usize::MAX, 2), Err(FormatError::Overflow));
        assert_eq!(slice_mut(&mut b, 2, 3), Err(FormatError::BufferTooSmall));
        assert_eq!(slice(&b, 1, 3).map(|s| s.len()), Ok(3));
    }

    #[test]
    fn zero_check() {
        assert!(all_zero(&[]));
        assert!(all_zero(&[0, 0]));
        assert!(!all_zero(&[0, 1]));
    }
}
