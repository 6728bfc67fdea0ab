// SPDX-License-Identifier: GPL-2.0

//! Static RAID-0 placement: fixed-size chunks dealt round-robin to members.
//!
//! The block arithmetic is the format core's `raid0_map`; this adds the
//! volume's size and byte offsets within blocks.

use crate::format::geometry;

/// Bytes per block.
const BLOCK: u64 = geometry::BLOCK_SIZE as u64;

/// Where a run of volume bytes lies on the members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Extent {
    /// Member index.
    pub(crate) member: u32,
    /// Byte offset on the member.
    pub(crate) offset: u64,
    /// Bytes, up to the end of the chunk.
    pub(crate) len: u64,
}

/// A RAID-0 layout.
///
/// # Invariants
///
/// `1 <= members <= 32`, `chunk` is a power of two of at least a block and
/// `chunks_per_member >= 1`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Raid0 {
    members: u32,
    chunk: u64,
    chunks_per_member: u64,
}

impl Raid0 {
    /// A layout over `members` members of `member_bytes` each, in `chunk`
    /// byte chunks.  `None` if the shape is impossible.
    pub(crate) fn new(members: u32, chunk: u64, member_bytes: u64) -> Option<Self> {
        if members == 0
            || members as usize > geometry::MAX_MEMBERS
            || !chunk.is_power_of_two()
            || chunk < BLOCK
        {
            return None;
        }
        let chunks_per_member = member_bytes / chunk;
        if chunks_per_member == 0 {
            return None;
        }
        // The volume's size must fit in a u64 of bytes.
        chunks_per_member
            .checked_mul(u64::from(members))?
            .checked_mul(chunk)?;
        // INVARIANT: Checked above.
        Some(Self {
            members,
            chunk,
            chunks_per_member,
        })
    }

    /// Volume size in bytes.
    pub(crate) fn capacity(&self) -> u64 {
        // Cannot overflow: checked in `new`.
        self.chunks_per_member * u64::from(self.members) * self.chunk
    }

    /// Chunk size in bytes.
    pub(crate) fn chunk(&self) -> u64 {
        self.chunk
    }

    /// Maps volume byte `pos` to its member extent, which runs to the end of
    /// its chunk.  `None` beyond the end of the volume.
    pub(crate) fn map(&self, pos: u64) -> Option<Extent> {
        if pos >= self.capacity() {
            return None;
        }
        let run = geometry::raid0_map(pos / BLOCK, self.members, self.chunk / BLOCK).ok()?;
        let within = pos % BLOCK;
        // Cannot overflow: the run lies within a member, whose size in bytes
        // fits a u64 (checked in `new`).
        Some(Extent {
            member: run.member,
            offset: run.block * BLOCK + within,
            len: run.blocks * BLOCK - within,
        })
    }
}

#[kernel::prelude::kunit_tests(stria_raid0)]
mod tests {
    use super::*;
    use kernel::prelude::*;

    #[test]
    fn rejects_bad_shapes() {
        assert!(Raid0::new(0, 65536, 1 << 20).is_none());
        assert!(Raid0::new(4, 65535, 1 << 20).is_none());
        assert!(Raid0::new(4, 65536, 4096).is_none());
        assert!(Raid0::new(4, 2048, 1 << 20).is_none());
        assert!(Raid0::new(33, 65536, 1 << 20).is_none());
        assert!(Raid0::new(32, 1 << 62, u64::MAX).is_none());
    }

    #[test]
    fn capacity_rounds_members_down_to_chunks() -> Result {
        let l = Raid0::new(4, 65536, (1 << 20) + 1000).ok_or(EINVAL)?;
        assert_eq!(l.capacity(), 4 << 20);
        Ok(())
    }

    #[test]
    fn deals_chunks_round_robin() -> Result {
        let l = Raid0::new(3, 4096, 1 << 20).ok_or(EINVAL)?;
        assert_eq!(
            l.map(0),
            Some(Extent {
                member: 0,
                offset: 0,
                len: 4096
            })
        );
        assert_eq!(
            l.map(4096 + 512),
            Some(Extent {
                member: 1,
                offset: 512,
                len: 3584
            })
        );
        assert_eq!(
            l.map(3 * 4096),
            Some(Extent {
                member: 0,
                offset: 4096,
                len: 4096
            })
        );
        assert_eq!(l.map(l.capacity()), None);
        Ok(())
    }

    #[test]
    fn every_byte_has_one_home() -> Result {
        // Every member chunk is hit exactly once when walking the volume.
        let l = Raid0::new(5, 4096, 8 * 4096).ok_or(EINVAL)?;
        let mut seen = [[false; 8]; 5];
        let mut pos = 0;
        while let Some(e) = l.map(pos) {
            let slot = seen
                .get_mut(e.member as usize)
                .and_then(|m| m.get_mut((e.offset / 4096) as usize))
                .ok_or(ERANGE)?;
            assert!(!*slot);
            *slot = true;
            pos += e.len;
        }
        assert!(seen.iter().all(|m| m.iter().all(|&s| s)));
        Ok(())
    }
}
