// SPDX-License-Identifier: GPL-2.0

//! Signatures of things a device may already hold, so that `create` does
//! not destroy them by accident.

use stria_core::header::looks_like_header;
use stria_core::superblock;

/// Reads `len` bytes at `offset`, or nothing beyond the end.
pub trait ReadAt {
    /// Bytes at `offset`; shorter (or empty) past the end of the device.
    fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>>;
    /// Size in bytes.
    fn size(&self) -> u64;
}

fn at(dev: &dyn ReadAt, offset: u64, len: usize) -> Vec<u8> {
    dev.read_at(offset, len).unwrap_or_default()
}

fn has(dev: &dyn ReadAt, offset: u64, magic: &[u8]) -> bool {
    at(dev, offset, magic.len()) == magic
}

/// The signatures found on `dev`, by name.
pub fn signatures(dev: &dyn ReadAt) -> Vec<&'static str> {
    let size = dev.size();
    let mut found = Vec::new();
    let sb_off = superblock::SB_PRIMARY_BLOCK * 4096;
    if has(dev, sb_off, &superblock::SB_MAGIC) {
        found.push("stria superblock");
    } else if let Ok(loc) = superblock::locations(size / 4096) {
        if has(dev, loc.backup_block * 4096, &superblock::SB_MAGIC) {
            found.push("stria superblock (backup)");
        }
    }
    if looks_like_header(&at(dev, 0, 4096)) {
        found.push("stria stripe header");
    }
    if has(dev, 1080, &[0x53, 0xef]) {
        found.push("ext2/3/4 filesystem");
    }
    if has(dev, 0, b"XFSB") {
        found.push("xfs filesystem");
    }
    if has(dev, 65600, b"_BHRfS_M") {
        found.push("btrfs filesystem");
    }
    if has(dev, 4086, b"SWAPSPACE2") {
        found.push("swap space");
    }
    if has(dev, 512, b"LABELONE") {
        found.push("LVM physical volume");
    }
    if has(dev, 512, b"EFI PART") {
        found.push("GPT partition table");
    } else if has(dev, 510, &[0x55, 0xaa]) && at(dev, 446, 64).iter().any(|&b| b != 0) {
        found.push("MBR partition table");
    }
    // md: 1.1 at the start, 1.2 at 4 KiB, 1.0 8 KiB from the end, 0.90 in
    // the last 64 KiB-aligned 64 KiB.
    let md = 0xa92b_4efcu32.to_le_bytes();
    let md_spots = [
        Some(0),
        Some(4096),
        size.checked_sub(8192).map(|o| o & !4095),
        (size / 65536).checked_sub(1).map(|c| c * 65536),
    ];
    if md_spots.into_iter().flatten().any(|o| has(dev, o, &md)) {
        found.push("md RAID member");
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(Vec<u8>);

    impl ReadAt for Mem {
        fn read_at(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
            let start = (offset as usize).min(self.0.len());
            let end = start.saturating_add(len).min(self.0.len());
            Ok(self.0[start..end].to_vec())
        }
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
    }

    fn blank() -> Mem {
        Mem(vec![0; 1 << 20])
    }

    #[test]
    fn blank_device_has_no_signature() {
        assert!(signatures(&blank()).is_empty());
    }

    #[test]
    fn finds_each_signature() {
        let cases: &[(u64, &[u8], &str)] = &[
            (1080, &[0x53, 0xef], "ext2/3/4 filesystem"),
            (0, b"XFSB", "xfs filesystem"),
            (65600, b"_BHRfS_M", "btrfs filesystem"),
            (4086, b"SWAPSPACE2", "swap space"),
            (512, b"LABELONE", "LVM physical volume"),
            (512, b"EFI PART", "GPT partition table"),
            (4096, b"STRIA_SB", "stria superblock"),
            (4096, &0xa92b_4efcu32.to_le_bytes(), "md RAID member"),
            (
                (1 << 20) - 8192,
                &0xa92b_4efcu32.to_le_bytes(),
                "md RAID member",
            ),
            (
                (1 << 20) - 65536,
                &0xa92b_4efcu32.to_le_bytes(),
                "md RAID member",
            ),
        ];
        for (off, magic, name) in cases {
            let mut m = blank();
            m.0[*off as usize..*off as usize + magic.len()].copy_from_slice(magic);
            assert!(signatures(&m).contains(name), "{name} not found");
        }
    }

    #[test]
    fn mbr_needs_a_partition_entry() {
        let mut m = blank();
        m.0[510] = 0x55;
        m.0[511] = 0xaa;
        assert!(signatures(&m).is_empty());
        m.0[450] = 0x83;
        assert_eq!(signatures(&m), vec!["MBR partition table"]);
    }
}
