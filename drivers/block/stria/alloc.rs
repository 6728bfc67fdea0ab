// SPDX-License-Identifier: GPL-2.0

//! Free space on the members: where the strips of new stripes go.
//!
//! Each member's data area is handed out from its low end upwards, like a
//! log. A stripe's strips go to the members of its group with the most
//! space left, so members fill evenly and no stripe puts two strips on one
//! member; their offsets differ from member to member as they please. A
//! stripe closed smaller than planned gives back the tail of its strips when
//! nothing was handed out after them. Space behind the frontier that
//! overwrites left dead is for free-space collection to reclaim.

use crate::format::geometry::MAX_STRIPS;
use crate::format::header::StripeLocation;
use kernel::prelude::*;

/// One member's data area and frontier, in member blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Area {
    start: u64,
    end: u64,
    next: u64,
}

/// Free space of every member.
pub(crate) struct Space {
    areas: KVec<Area>,
}

impl Space {
    /// Space over data areas `[start, end)`, one per member, all free.
    pub(crate) fn new(areas: &[(u64, u64)]) -> Result<Self> {
        let mut v = KVec::with_capacity(areas.len(), GFP_KERNEL)?;
        for &(start, end) in areas {
            if start > end {
                return Err(EINVAL);
            }
            v.push(
                Area {
                    start,
                    end,
                    next: start,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(Self { areas: v })
    }

    /// Marks everything on `member` below block `end` as used (found in
    /// use when the members were scanned).
    pub(crate) fn advance(&mut self, member: usize, end: u64) {
        if let Some(a) = self.areas.get_mut(member) {
            a.next = a.next.max(end.min(a.end));
        }
    }

    /// Free blocks of `member`.
    pub(crate) fn free_blocks(&self, member: usize) -> u64 {
        self.areas.get(member).map_or(0, |a| a.end - a.next)
    }

    /// Used blocks of `member`.
    pub(crate) fn used_blocks(&self, member: usize) -> u64 {
        self.areas.get(member).map_or(0, |a| a.next - a.start)
    }

    /// Hands out `width` strips of `span` blocks on distinct members of
    /// `group` (a member bitmap) into `out`, in member order. `ENOSPC` when
    /// fewer than `width` members have room; nothing is taken then.
    pub(crate) fn alloc_strips(
        &mut self,
        group: u32,
        width: usize,
        span: u64,
        out: &mut [StripeLocation; MAX_STRIPS],
    ) -> Result {
        if width == 0 || width > MAX_STRIPS || span == 0 {
            return Err(EINVAL);
        }
        let mut chosen = 0u32;
        for _ in 0..width {
            // The roomiest member not yet chosen; the lowest index on ties.
            let mut best: Option<(usize, u64)> = None;
            for (i, a) in self.areas.iter().enumerate().take(32) {
                let bit = 1u32 << i;
                let free = a.end - a.next;
                if group & bit == 0 || chosen & bit != 0 || free < span {
                    continue;
                }
                if best.is_none_or(|(_, f)| free > f) {
                    best = Some((i, free));
                }
            }
            let (i, _) = best.ok_or(ENOSPC)?;
            chosen |= 1 << i;
        }
        let mut k = 0;
        for (i, a) in self.areas.iter_mut().enumerate().take(32) {
            if chosen & (1 << i) == 0 {
                continue;
            }
            let slot = out.get_mut(k).ok_or(EINVAL)?;
            *slot = StripeLocation {
                member: i as u8,
                lba: a.next,
            };
            a.next += span;
            k += 1;
        }
        Ok(())
    }

    /// Gives back `blocks` blocks of `member` from `lba` on, if they are the
    /// last ones handed out there; returns whether they were.
    pub(crate) fn give_back(&mut self, member: u8, lba: u64, blocks: u64) -> bool {
        let Some(a) = self.areas.get_mut(usize::from(member)) else {
            return false;
        };
        if lba.checked_add(blocks) != Some(a.next) || lba < a.start {
            return false;
        }
        a.next = lba;
        true
    }
}

#[kernel::prelude::kunit_tests(stria_alloc)]
mod tests {
    use super::*;

    const NONE: StripeLocation = StripeLocation { member: 0, lba: 0 };

    #[test]
    fn strips_on_distinct_roomiest_members() -> Result {
        let mut s = Space::new(&[(256, 1256), (256, 1256), (256, 1256), (256, 2256)])?;
        let mut out = [NONE; MAX_STRIPS];
        s.alloc_strips(0b1111, 3, 100, &mut out)?;
        // Member 3 is the roomiest; then members 0 and 1 (lowest index).
        assert_eq!(
            out[0],
            StripeLocation {
                member: 0,
                lba: 256
            }
        );
        assert_eq!(
            out[1],
            StripeLocation {
                member: 1,
                lba: 256
            }
        );
        assert_eq!(
            out[2],
            StripeLocation {
                member: 3,
                lba: 256
            }
        );
        s.alloc_strips(0b1111, 3, 100, &mut out)?;
        // Member 2 now has the most room after member 3.
        let members: KVec<u8> = {
            let mut v = KVec::new();
            for l in out.iter().take(3) {
                v.push(l.member, GFP_KERNEL)?;
            }
            v
        };
        assert_eq!(&members[..], &[0, 2, 3]);
        assert_eq!(s.used_blocks(3), 200);
        assert_eq!(s.free_blocks(1), 900);
        Ok(())
    }

    #[test]
    fn group_mask_and_enospc() -> Result {
        let mut s = Space::new(&[(0, 250), (0, 250), (0, 1000)])?;
        let mut out = [NONE; MAX_STRIPS];
        // Only members 0 and 1 belong to the group.
        s.alloc_strips(0b011, 2, 100, &mut out)?;
        s.alloc_strips(0b011, 2, 100, &mut out)?;
        assert_eq!(s.free_blocks(2), 1000);
        // 50 blocks left on each: a third stripe does not fit, and the
        // failed attempt takes nothing.
        assert_eq!(s.alloc_strips(0b011, 2, 100, &mut out).err(), Some(ENOSPC));
        assert_eq!(s.free_blocks(0), 50);
        assert_eq!(s.alloc_strips(0b111, 4, 10, &mut out).err(), Some(ENOSPC));
        assert_eq!(s.free_blocks(2), 1000);
        Ok(())
    }

    #[test]
    fn give_back_only_the_tail() -> Result {
        let mut s = Space::new(&[(10, 1000), (10, 1000)])?;
        let mut out = [NONE; MAX_STRIPS];
        s.alloc_strips(0b11, 2, 100, &mut out)?;
        s.alloc_strips(0b11, 2, 100, &mut out)?;
        // Not the tail: refused.
        assert!(!s.give_back(0, 10, 100));
        // The unused end of the last strip: taken back.
        assert!(s.give_back(0, 150, 60));
        assert_eq!(s.used_blocks(0), 140);
        // Scanning found data further on: the frontier moves past it.
        s.advance(1, 500);
        assert_eq!(s.free_blocks(1), 500);
        s.advance(1, 5000);
        assert_eq!(s.free_blocks(1), 0);
        Ok(())
    }
}
