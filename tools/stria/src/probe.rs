// SPDX-License-Identifier: GPL-2.0

//! Signatures of things a device may already hold, so that `create` does
//! not destroy them by accident: stria's own, recognised here, and
//! everything libblkid knows.

use crate::blkid;
use std::io;
use std::os::fd::BorrowedFd;
use stria_core::header::looks_like_header;
use stria_core::superblock;

/// Reads `len` bytes at `offset`, or nothing beyond the end.
pub trait ReadAt {
    /// Bytes at `offset`; shorter (or empty) past the end of the device.
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Size in bytes.
    fn size(&self) -> u64;
}

fn at(dev: &dyn ReadAt, offset: u64, len: usize) -> Vec<u8> {
    dev.read_at(offset, len).unwrap_or_default()
}

fn has(dev: &dyn ReadAt, offset: u64, magic: &[u8]) -> bool {
    at(dev, offset, magic.len()) == magic
}

/// stria's own signatures on `dev`, which libblkid does not know.
pub fn stria_signatures(dev: &dyn ReadAt) -> Vec<&'static str> {
    let mut found = Vec::new();
    let sb_off = superblock::SB_PRIMARY_BLOCK * 4096;
    if has(dev, sb_off, &superblock::SB_MAGIC) {
        found.push("stria member");
    } else if let Ok(loc) = superblock::locations(dev.size() / 4096) {
        if has(dev, loc.backup_block * 4096, &superblock::SB_MAGIC) {
            found.push("stria member (backup superblock)");
        }
    }
    if looks_like_header(&at(dev, 0, 4096)) {
        found.push("stria stripe header");
    }
    found
}

/// Every signature on `dev`, by name: stria's own first, then those
/// libblkid finds through `fd`, an open descriptor of the same device.
pub fn signatures(dev: &dyn ReadAt, fd: BorrowedFd<'_>) -> io::Result<Vec<String>> {
    let mut found: Vec<String> = stria_signatures(dev)
        .into_iter()
        .map(str::to_string)
        .collect();
    for sig in blkid::Probe::new(fd)?.signatures()? {
        let name = sig.to_string();
        // A type can match at several places (md's copies, for one).
        if !found.contains(&name) {
            found.push(name);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(Vec<u8>);

    impl ReadAt for Mem {
        fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
            let start = (offset as usize).min(self.0.len());
            let end = start.saturating_add(len).min(self.0.len());
            Ok(self.0[start..end].to_vec())
        }
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
    }

    /// Large enough for a backup superblock copy.
    fn blank() -> Mem {
        Mem(vec![0; 4 << 20])
    }

    #[test]
    fn blank_device_is_no_stria_member() {
        assert!(stria_signatures(&blank()).is_empty());
    }

    #[test]
    fn finds_either_superblock_copy() {
        let size = 4u64 << 20;
        let backup = superblock::locations(size / 4096).unwrap().backup_block * 4096;
        let cases = [
            (4096, "stria member"),
            (backup, "stria member (backup superblock)"),
        ];
        for (off, name) in cases {
            let mut m = blank();
            let off = off as usize;
            m.0[off..off + superblock::SB_MAGIC.len()].copy_from_slice(&superblock::SB_MAGIC);
            assert_eq!(stria_signatures(&m), vec![name]);
        }
    }
}
