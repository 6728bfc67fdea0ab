// SPDX-License-Identifier: GPL-2.0

//! How a group's stripes are shaped: the policy of a group, and the
//! narrower stripe a part-full one is written as.

use crate::alloc::Space;
use crate::format::geometry;
use crate::format::geometry::RaidType;
use crate::format::geometry::MAX_STRIPS;
use crate::format::header::StripeLocation;
use crate::format::superblock::StripeGroup;
use kernel::prelude::*;

/// How new stripes of one group are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Group number, recorded in headers.
    pub(crate) group: u8,
    /// Member bitmap.
    pub(crate) members: u32,
    /// RAID type of full stripes.
    pub(crate) raid: RaidType,
    /// Strips of a full stripe, parity included.
    pub(crate) width: usize,
    /// Data blocks per strip of a full stripe.
    pub(crate) strip_blocks: u32,
}

impl Policy {
    /// Most member bios one stripe's batch takes.
    pub(crate) fn batch_bios(&self) -> Option<usize> {
        let strip = geometry::blocks_to_bytes(u64::from(self.strip_blocks)).ok()?;
        self.width
            .checked_mul(crate::blk::iobuf::strip_bios(strip)?)
    }

    /// The policy of group `index` as the superblock records it.
    pub(crate) fn from_group(index: u8, g: &StripeGroup, nr_members: usize) -> Result<Self> {
        let width = usize::from(g.width);
        let in_array = if nr_members >= 32 {
            u32::MAX
        } else {
            (1u32 << nr_members) - 1
        };
        let ok = width >= g.raid_type.min_strips()
            && width <= MAX_STRIPS
            && g.members & !in_array == 0
            && g.members.count_ones() as usize >= width
            && g.strip_blocks > 0
            && g.strip_blocks <= geometry::MAX_STRIP_BLOCKS;
        if !ok {
            return Err(EINVAL);
        }
        Ok(Self {
            group: index,
            members: g.members,
            raid: g.raid_type,
            width,
            strip_blocks: g.strip_blocks,
        })
    }

    /// Data strips of a full stripe.
    pub(crate) fn data_strips(&self) -> usize {
        match self.raid {
            RaidType::Raid1 => 1,
            r => self.width - r.parity_strips(),
        }
    }

    /// Data blocks of a full stripe.
    pub(crate) fn data_blocks(&self) -> u64 {
        self.data_strips() as u64 * u64::from(self.strip_blocks)
    }

    /// Member blocks one strip of a full stripe takes, header included.
    pub(super) fn span(&self) -> u64 {
        u64::from(self.strip_blocks) + 1
    }
}

/// The shape a stripe is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Protection.
    pub(crate) raid: RaidType,
    /// Data strips.
    pub(crate) nr_data: usize,
    /// Strips, parity and mirrors included.
    pub(crate) nr_strips: usize,
    /// Data blocks per strip.
    pub(crate) strip_blocks: u32,
}

impl Plan {
    /// Member blocks the stripe takes.
    pub(crate) fn cost(&self) -> u64 {
        self.nr_strips as u64 * (u64::from(self.strip_blocks) + 1)
    }
}

/// Orders the strips `locs` of a stripe being closed by the free space of
/// their members, roomiest first, so that a narrower shape keeps those.
/// Ties go round by `seq`, so that equal members take turns.
pub(crate) fn sort_by_room(locs: &mut [StripeLocation], space: &Space, seq: u64) {
    let n = (locs.len() as u64).max(1);
    let key = |l: &StripeLocation| {
        let turn = (u64::from(l.member) + n - seq % n) % n;
        (
            core::cmp::Reverse(space.free_blocks(usize::from(l.member))),
            turn,
        )
    };
    // At most MAX_STRIPS entries: an insertion sort, without recursion.
    for i in 1..locs.len() {
        let mut j = i;
        while j > 0 {
            let (Some(a), Some(b)) = (locs.get(j - 1), locs.get(j)) else {
                break;
            };
            if key(a) <= key(b) {
                break;
            }
            locs.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// The cheapest shape for a stripe of `p` holding `used` data blocks with
/// the redundancy of a full one: a full stripe when full; otherwise fewer
/// or shorter strips, or as many mirrored copies as the parity protects.
/// Strips never outgrow the group's, which is what was allocated.
pub(crate) fn plan(p: &Policy, used: u64) -> Option<Plan> {
    if used == 0 || used > p.data_blocks() {
        return None;
    }
    let sb = u64::from(p.strip_blocks);
    if p.raid == RaidType::Raid1 {
        return Some(Plan {
            raid: RaidType::Raid1,
            nr_data: 1,
            nr_strips: p.width,
            strip_blocks: u32::try_from(used).ok()?,
        });
    }
    let par = p.raid.parity_strips();
    let min_data = p.raid.min_strips().saturating_sub(par).max(1);
    let mut best: Option<Plan> = None;
    let mut consider = |c: Plan| {
        if best.is_none_or(|b| c.cost() < b.cost()) {
            best = Some(c);
        }
    };
    for k in min_data..=p.data_strips() {
        let per = used.div_ceil(k as u64);
        if per > sb {
            continue;
        }
        consider(Plan {
            raid: p.raid,
            nr_data: k,
            nr_strips: k + par,
            strip_blocks: u32::try_from(per).ok()?,
        });
    }
    // Parity protects against `par` lost members; so do `par + 1` copies.
    if par > 0 && used <= sb && par < p.width {
        consider(Plan {
            raid: RaidType::Raid1,
            nr_data: 1,
            nr_strips: par + 1,
            strip_blocks: u32::try_from(used).ok()?,
        });
    }
    best
}
