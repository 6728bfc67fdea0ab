// SPDX-License-Identifier: GPL-2.0

//! Where the blocks of a stripe live.
//!
//! A stripe is `nr_strips` strips, one per member, each at its own LBA on
//! its member. Every strip is contiguous on its member and laid out as
//!
//! ```text
//!   lba + 0                      header block (identical in every strip)
//!   lba + 1 .. lba + 1 + S       S = strip_blocks blocks of strip data
//! ```
//!
//! so a stripe's header survives the loss of any member. The data strips,
//! in strip order with the parity strips skipped, form the stripe's *data
//! space*: block `d` of it is block `d % S` of data strip `d / S`. RAID-1
//! has one data strip (strip 0) and its other strips are mirrors of it.
//!
//! All addresses are in 4 KiB blocks.

use super::error::FormatError;
use super::error::Result;
use super::header::Piece;
use super::header::Strip;
use super::header::StripeHeader;

/// Bytes per block, on members and on volumes.
pub const BLOCK_SIZE: usize = 4096;

/// log2 of [`BLOCK_SIZE`].
pub const BLOCK_SHIFT: u32 = 12;

/// 512-byte sectors per block, for the kernel's sector addressing.
pub const SECTORS_PER_BLOCK: u64 = (BLOCK_SIZE / 512) as u64;

/// First 512-byte sector of block `lba`. Block addresses come from disk, so
/// the shift is checked rather than trusted.
pub fn block_to_sector(lba: u64) -> Result<u64> {
    lba.checked_mul(SECTORS_PER_BLOCK)
        .ok_or(FormatError::Overflow)
}

/// Byte offset of block `lba` (or bytes in `lba` blocks), if it fits: block
/// addresses come from disk.
pub const fn block_offset(lba: u64) -> Option<u64> {
    lba.checked_mul(BLOCK_SIZE as u64)
}

/// Bytes of `blocks` blocks, for sizing buffers.
pub fn blocks_to_bytes(blocks: u64) -> Result<usize> {
    usize::try_from(blocks)
        .ok()
        .and_then(|b| b.checked_mul(BLOCK_SIZE))
        .ok_or(FormatError::Overflow)
}

/// Most members in an array, hence most strips in a stripe.
pub const MAX_MEMBERS: usize = 32;

/// Most strips in a stripe.
pub const MAX_STRIPS: usize = MAX_MEMBERS;

/// Largest strip, in data blocks (128 MiB). Piece offsets and lengths are
/// 16-bit on disk, which this keeps in range.
pub const MAX_STRIP_BLOCKS: u32 = 32768;

/// How a stripe protects its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RaidType {
    /// Striping without redundancy.
    Raid0 = 0,
    /// Mirroring: every strip holds the same data.
    Raid1 = 1,
    /// One XOR parity strip (P).
    Raid5 = 5,
    /// Two parity strips, P and the Reed-Solomon syndrome Q.
    Raid6 = 6,
}

impl RaidType {
    /// Decodes the on-disk code.
    pub fn from_u8(v: u8) -> Result<Self> {
        match v {
            0 => Ok(RaidType::Raid0),
            1 => Ok(RaidType::Raid1),
            5 => Ok(RaidType::Raid5),
            6 => Ok(RaidType::Raid6),
            _ => Err(FormatError::BadRaidType),
        }
    }

    /// Number of parity strips per stripe.
    pub fn parity_strips(self) -> usize {
        match self {
            RaidType::Raid0 | RaidType::Raid1 => 0,
            RaidType::Raid5 => 1,
            RaidType::Raid6 => 2,
        }
    }

    /// Fewest strips a stripe of this type may have: RAID-0 one, RAID-1 two
    /// copies, RAID-5 two data strips and P (fewer is a mirror in disguise),
    /// RAID-6 one data strip with P and Q.
    pub fn min_strips(self) -> usize {
        match self {
            RaidType::Raid0 => 1,
            RaidType::Raid1 => 2,
            RaidType::Raid5 | RaidType::Raid6 => 3,
        }
    }

    /// Members whose loss a stripe of this type survives, given its width.
    pub fn redundancy(self, nr_strips: usize) -> usize {
        match self {
            RaidType::Raid0 => 0,
            RaidType::Raid1 => nr_strips.saturating_sub(1),
            RaidType::Raid5 => 1,
            RaidType::Raid6 => 2,
        }
    }
}

/// Checks that a strip count and parity positions suit a RAID type.
///
/// RAID-0 and RAID-1 have no parity positions; RAID-5 has P only; RAID-6
/// has P and Q at distinct positions. Positions are below `nr_strips`.
pub fn check_layout(
    raid: RaidType,
    nr_strips: usize,
    parity_index: Option<u8>,
    q_index: Option<u8>,
) -> Result {
    if nr_strips < raid.min_strips() || nr_strips > MAX_STRIPS {
        return Err(FormatError::BadStripCount);
    }
    let in_range = |i: u8| usize::from(i) < nr_strips;
    let ok = match (raid, parity_index, q_index) {
        (RaidType::Raid0 | RaidType::Raid1, None, None) => true,
        (RaidType::Raid5, Some(p), None) => in_range(p),
        (RaidType::Raid6, Some(p), Some(q)) => in_range(p) && in_range(q) && p != q,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(FormatError::BadParityIndex)
    }
}

/// The parity positions a writer uses by default for stripe `seq`.
///
/// P rotates backwards one strip per stripe and Q follows P, as in md's
/// left-symmetric layout, so that parity writes spread over all members.
/// This is only the writer's habit: readers always take the positions from
/// the header.
pub fn default_parity(raid: RaidType, nr_strips: usize, seq: u64) -> (Option<u8>, Option<u8>) {
    let n = match u64::try_from(nr_strips) {
        Ok(n) if n > 0 && nr_strips <= MAX_STRIPS => n,
        _ => return (None, None),
    };
    let p = n - 1 - seq % n;
    // p < n <= 32, so these narrowings never fail.
    let p8 = u8::try_from(p).unwrap_or(0);
    let q8 = u8::try_from((p + 1) % n).unwrap_or(0);
    match raid {
        RaidType::Raid0 | RaidType::Raid1 => (None, None),
        RaidType::Raid5 => (Some(p8), None),
        RaidType::Raid6 => (Some(p8), Some(q8)),
    }
}

/// What a strip of a stripe holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StripRole {
    /// Data strip with this position in the data space.
    Data(u8),
    /// RAID-1 copy of data strip 0.
    Mirror,
    /// The XOR parity strip.
    P,
    /// The RAID-6 Q strip.
    Q,
}

/// Role of strip `i` of `h`.
pub fn strip_role(h: &StripeHeader, i: usize) -> Result<StripRole> {
    if i >= usize::from(h.nr_strips) {
        return Err(FormatError::OutOfRange);
    }
    let is = |x: Option<u8>| x.is_some_and(|x| usize::from(x) == i);
    if is(h.parity_index) {
        return Ok(StripRole::P);
    }
    if is(h.q_index) {
        return Ok(StripRole::Q);
    }
    if h.raid_type == RaidType::Raid1 {
        return Ok(if i == 0 {
            StripRole::Data(0)
        } else {
            StripRole::Mirror
        });
    }
    let below = |x: Option<u8>| usize::from(x.is_some_and(|x| usize::from(x) < i));
    let k = i
        .checked_sub(below(h.parity_index) + below(h.q_index))
        .ok_or(FormatError::BadParityIndex)?;
    u8::try_from(k)
        .map(StripRole::Data)
        .map_err(|_| FormatError::OutOfRange)
}

/// Number of data strips of `h`.
pub fn data_strip_count(h: &StripeHeader) -> usize {
    match h.raid_type {
        RaidType::Raid1 => 1,
        r => usize::from(h.nr_strips).saturating_sub(r.parity_strips()),
    }
}

/// Strip index of data strip `k` of `h`.
pub fn data_strip(h: &StripeHeader, k: usize) -> Result<usize> {
    if k >= data_strip_count(h) {
        return Err(FormatError::OutOfRange);
    }
    let mut i = k;
    // Each parity position at or before the candidate pushes it one on;
    // sorting the two positions first makes a single pass enough.
    let (a, b) = match (h.parity_index, h.q_index) {
        (Some(p), Some(q)) => (Some(p.min(q)), Some(p.max(q))),
        (p, q) => (p, q),
    };
    for x in [a, b].into_iter().flatten() {
        if usize::from(x) <= i {
            i += 1;
        }
    }
    Ok(i)
}

/// Blocks in the data space of `h`.
pub fn data_blocks(h: &StripeHeader) -> u64 {
    // At most 32 * 32768, far from overflowing.
    (data_strip_count(h) as u64).saturating_mul(u64::from(h.strip_blocks))
}

/// Member blocks one strip of `h` occupies, header block included.
pub fn strip_span(h: &StripeHeader) -> u64 {
    u64::from(h.strip_blocks).saturating_add(1)
}

/// First data block of `strip` on its member.
pub fn strip_data_lba(strip: &Strip) -> Result<u64> {
    strip.lba.checked_add(1).ok_or(FormatError::Overflow)
}

/// A contiguous run of blocks on one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Strip index within the stripe.
    pub strip: u8,
    /// Member index within the array.
    pub member: u8,
    /// First block on the member.
    pub lba: u64,
    /// Length in blocks (never zero).
    pub blocks: u32,
}

/// Iterator over the member runs of a data-space range; see [`map_data`].
pub struct DataRuns<'a> {
    hdr: &'a StripeHeader,
    pos: u64,
    end: u64,
}

impl Iterator for DataRuns<'_> {
    type Item = Run;

    fn next(&mut self) -> Option<Run> {
        if self.pos >= self.end {
            return None;
        }
        let sb = u64::from(self.hdr.strip_blocks);
        let k = usize::try_from(self.pos.checked_div(sb)?).ok()?;
        let off = self.pos.checked_rem(sb)?;
        let i = data_strip(self.hdr, k).ok()?;
        let strip = self.hdr.strips.get(i)?;
        let blocks = (sb - off).min(self.end - self.pos);
        self.pos += blocks;
        Some(Run {
            strip: u8::try_from(i).ok()?,
            member: strip.member,
            lba: strip_data_lba(strip).ok()?.checked_add(off)?,
            blocks: u32::try_from(blocks).ok()?,
        })
    }
}

/// Maps `len` blocks of the data space of `h` starting at `start` onto
/// member runs, one per data strip touched, in data-space order.
///
/// `h` should come from [`StripeHeader::decode`] or the builder; a
/// hand-made inconsistent header ends the iteration early rather than
/// producing wrong addresses.
pub fn map_data(h: &StripeHeader, start: u64, len: u64) -> Result<DataRuns<'_>> {
    check_layout(
        h.raid_type,
        usize::from(h.nr_strips),
        h.parity_index,
        h.q_index,
    )?;
    if h.strip_blocks == 0 {
        return Err(FormatError::BadStripSize);
    }
    let end = start.checked_add(len).ok_or(FormatError::Overflow)?;
    if end > data_blocks(h) {
        return Err(FormatError::OutOfRange);
    }
    Ok(DataRuns {
        hdr: h,
        pos: start,
        end,
    })
}

/// Where the data of piece `p`, stored in strip `strip` of `h`, lies.
/// Returns `None` for a trim record, which stores no data.
pub fn piece_run(h: &StripeHeader, strip: usize, p: &Piece) -> Result<Option<Run>> {
    if p.len == 0 {
        return Ok(None);
    }
    let s = h.strips().get(strip).ok_or(FormatError::OutOfRange)?;
    let end = u32::from(p.start) + u32::from(p.len);
    if end > h.strip_blocks {
        return Err(FormatError::PieceOutOfStrip);
    }
    let lba = strip_data_lba(s)?
        .checked_add(u64::from(p.start))
        .ok_or(FormatError::Overflow)?;
    Ok(Some(Run {
        strip: u8::try_from(strip).map_err(|_| FormatError::OutOfRange)?,
        member: s.member,
        lba,
        blocks: u32::from(p.len),
    }))
}

/// Where block `host_lba` of a host piece lies, when the piece covers it.
pub fn host_block_run(h: &StripeHeader, strip: usize, p: &Piece, host_lba: u64) -> Result<Run> {
    let delta = host_lba
        .checked_sub(p.host_lba)
        .ok_or(FormatError::OutOfRange)?;
    if delta >= u64::from(p.len) {
        return Err(FormatError::OutOfRange);
    }
    let run = piece_run(h, strip, p)?.ok_or(FormatError::OutOfRange)?;
    let blocks = run.blocks - u32::try_from(delta).map_err(|_| FormatError::OutOfRange)?;
    Ok(Run {
        lba: run.lba.checked_add(delta).ok_or(FormatError::Overflow)?,
        blocks,
        ..run
    })
}

/// One run of a static RAID-0 mapping; see [`raid0_map`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raid0Run {
    /// Member index.
    pub member: u32,
    /// Block on the member, relative to the start of its data area.
    pub block: u64,
    /// Blocks from here to the end of the chunk.
    pub blocks: u64,
}

/// Maps a host block of a statically striped (RAID-0) volume.
///
/// Chunk `c = host_block / chunk_blocks` goes to member `c % nr_members`
/// at chunk row `c / nr_members`. The returned length runs to the end of
/// the chunk, so a caller splits its request there.
pub fn raid0_map(host_block: u64, nr_members: u32, chunk_blocks: u64) -> Result<Raid0Run> {
    if nr_members == 0 || chunk_blocks == 0 {
        return Err(FormatError::ZeroLength);
    }
    if nr_members as usize > MAX_MEMBERS {
        return Err(FormatError::BadMemberCount);
    }
    let chunk = host_block / chunk_blocks;
    let off = host_block % chunk_blocks;
    let n = u64::from(nr_members);
    let row = chunk / n;
    let block = row
        .checked_mul(chunk_blocks)
        .and_then(|b| b.checked_add(off))
        .ok_or(FormatError::Overflow)?;
    Ok(Raid0Run {
        member: u32::try_from(chunk % n).map_err(|_| FormatError::Overflow)?,
        block,
        blocks: chunk_blocks - off,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_conversions() {
        assert_eq!(block_to_sector(3), Ok(24));
        assert_eq!(block_to_sector(u64::MAX / 8), Ok(u64::MAX / 8 * 8));
        assert_eq!(
            block_to_sector(u64::MAX / 8 + 1),
            Err(FormatError::Overflow)
        );
        assert_eq!(blocks_to_bytes(2), Ok(8192));
        assert_eq!(blocks_to_bytes(u64::MAX), Err(FormatError::Overflow));
    }

    #[test]
    fn raid_type_codes() {
        for (v, r) in [
            (0, RaidType::Raid0),
            (1, RaidType::Raid1),
            (5, RaidType::Raid5),
            (6, RaidType::Raid6),
        ] {
            assert_eq!(RaidType::from_u8(v), Ok(r));
            assert_eq!(r as u8, v);
        }
        for v in [2, 3, 4, 7, 0xff] {
            assert_eq!(RaidType::from_u8(v), Err(FormatError::BadRaidType));
        }
        assert_eq!(RaidType::Raid1.redundancy(3), 2);
        assert_eq!(RaidType::Raid6.redundancy(8), 2);
    }

    #[test]
    fn layout_rules() {
        use RaidType::*;
        assert_eq!(check_layout(Raid0, 1, None, None), Ok(()));
        assert_eq!(
            check_layout(Raid0, 0, None, None),
            Err(FormatError::BadStripCount)
        );
        assert_eq!(
            check_layout(Raid1, 1, None, None),
            Err(FormatError::BadStripCount)
        );
        assert_eq!(
            check_layout(Raid5, 2, Some(0), None),
            Err(FormatError::BadStripCount)
        );
        assert_eq!(check_layout(Raid5, 3, Some(2), None), Ok(()));
        assert_eq!(
            check_layout(Raid5, 3, Some(3), None),
            Err(FormatError::BadParityIndex)
        );
        assert_eq!(
            check_layout(Raid5, 3, None, None),
            Err(FormatError::BadParityIndex)
        );
        assert_eq!(
            check_layout(Raid5, 3, Some(0), Some(1)),
            Err(FormatError::BadParityIndex)
        );
        assert_eq!(check_layout(Raid6, 3, Some(0), Some(2)), Ok(()));
        assert_eq!(
            check_layout(Raid6, 3, Some(1), Some(1)),
            Err(FormatError::BadParityIndex)
        );
        assert_eq!(
            check_layout(Raid0, 4, Some(1), None),
            Err(FormatError::BadParityIndex)
        );
        assert_eq!(
            check_layout(Raid6, 33, Some(0), Some(1)),
            Err(FormatError::BadStripCount)
        );
    }

    #[test]
    fn parity_rotates_over_every_position() {
        let mut seen = [0u32; 5];
        for seq in 0..50 {
            let (p, q) = default_parity(RaidType::Raid6, 5, seq);
            let (p, q) = (p.unwrap(), q.unwrap());
            assert_ne!(p, q);
            assert_eq!(check_layout(RaidType::Raid6, 5, Some(p), Some(q)), Ok(()));
            seen[usize::from(p)] += 1;
        }
        assert_eq!(seen, [10; 5]);
        assert_eq!(default_parity(RaidType::Raid1, 2, 7), (None, None));
        assert_eq!(default_parity(RaidType::Raid5, 0, 7), (None, None));
        assert_eq!(default_parity(RaidType::Raid5, 3, 0), (Some(2), None));
    }

    #[test]
    fn raid0_static_map() {
        // 3 members, chunks of 4 blocks.
        let r = raid0_map(0, 3, 4).unwrap();
        assert_eq!((r.member, r.block, r.blocks), (0, 0, 4));
        let r = raid0_map(5, 3, 4).unwrap();
        assert_eq!((r.member, r.block, r.blocks), (1, 1, 3));
        let r = raid0_map(12 + 3, 3, 4).unwrap();
        assert_eq!((r.member, r.block, r.blocks), (0, 7, 1));
        assert_eq!(raid0_map(1, 0, 4), Err(FormatError::ZeroLength));
        assert_eq!(raid0_map(1, 2, 0), Err(FormatError::ZeroLength));
        assert_eq!(raid0_map(1, 33, 1), Err(FormatError::BadMemberCount));
        let r = raid0_map(u64::MAX, 32, u64::MAX).unwrap();
        assert_eq!((r.member, r.block, r.blocks), (1, 0, u64::MAX));
        // Every block of 4 rows lands on a distinct member block.
        let mut seen = [[false; 16]; 3];
        for b in 0..48 {
            let r = raid0_map(b, 3, 4).unwrap();
            assert!(!seen[r.member as usize][r.block as usize]);
            seen[r.member as usize][r.block as usize] = true;
        }
    }
}
