// SPDX-License-Identifier: GPL-2.0

//! Comparisons of two maps: the blocks only one of them holds, the
//! ranges where they differ, and the seeding of a divergence map.

use super::dir::PAGE_SLOTS;
use super::diverge::AreaState;
use super::diverge::Divergence;
use super::diverge::AREA_BLOCKS;
use super::slot_index;
use super::Map;
use super::LEAF_ENTRIES;
use kernel::prelude::*;

/// The entries of a leaf of each of two maps being compared.
pub(super) struct Compare {
    mine: KVec<u64>,
    theirs: KVec<u64>,
}

impl Compare {
    fn new() -> Result<Self> {
        let n = LEAF_ENTRIES as usize;
        Ok(Compare {
            mine: KVec::from_elem(0u64, n, GFP_KERNEL)?,
            theirs: KVec::from_elem(0u64, n, GFP_KERNEL)?,
        })
    }
}

/// Blocks compared at a time when seeding a divergence map: 1 GiB, a
/// 32 KiB bit map.
const SEED_BLOCKS: u64 = LEAF_ENTRIES * PAGE_SLOTS as u64;

impl Map {
    /// Blocks this map points at that no map of `others` points at too
    /// (at the same block of the volume: copies share blocks nowhere
    /// else), which deleting this volume would give back. Leaves and
    /// pages it shares with one of them are passed over whole; the rest
    /// is compared entry by entry, one map's lock at a time, so under
    /// writes the count is that of a moment per leaf.
    pub(crate) fn unique_among(&self, others: &[&Map]) -> Result<u64> {
        let n = LEAF_ENTRIES as usize;
        let mut mine = KVec::from_elem(0u64, n, GFP_KERNEL)?;
        let mut theirs = KVec::from_elem(0u64, n, GFP_KERNEL)?;
        let mut keys = KVec::with_capacity(others.len(), GFP_KERNEL)?;
        let slots = self.inner.lock().leaves.len();
        let mut unique = 0u64;
        let mut i = 0;
        while i < slots {
            let next_page = (i / PAGE_SLOTS + 1) * PAGE_SLOTS;
            let (page, slot) = self.lock().keys(i);
            if page.is_none() && !self.lock().writable(i as u64 * LEAF_ENTRIES) {
                // No page: nothing mapped in this GiB.
                i = next_page;
                continue;
            }
            keys.clear();
            for m in others {
                keys.push(m.lock().keys(i), GFP_KERNEL)?;
            }
            if page.is_some() && keys.iter().any(|k| k.0 == page) {
                i = next_page;
                continue;
            }
            if slot.is_none() || keys.iter().any(|k| k.1 == slot) {
                i += 1;
                continue;
            }
            let mut left = self.lock().entries(i, &mut mine);
            for (m, k) in others.iter().zip(keys.iter()) {
                if left == 0 {
                    break;
                }
                if k.1.is_none() || m.lock().entries(i, &mut theirs) == 0 {
                    continue;
                }
                for (a, b) in mine.iter_mut().zip(theirs.iter()) {
                    if *a != 0 && a == b {
                        *a = 0;
                        left -= 1;
                    }
                }
            }
            unique += left;
            i += 1;
        }
        Ok(unique)
    }

    /// Sets bit `b - start` of `bits` (bit `b % 8` of byte `b / 8`, both
    /// counted from `start`) for every block `b` of `start .. start + n`
    /// at which this map and `other` point at different places, and
    /// returns how many there are. Pages and leaves both point at are
    /// passed over whole; one map's lock at a time, as
    /// [`Self::unique_among`]. `EINVAL` if the blocks are not within both
    /// maps or `bits` is too short.
    pub(crate) fn diff(&self, other: &Map, start: u64, n: u64, bits: &mut [u8]) -> Result<u64> {
        let end = self.diff_range(other, start, n, bits)?;
        let mut cmp = Compare::new()?;
        self.compare(other, start, start, end, bits, &mut cmp)
    }

    /// [`Self::diff`], looking only where divergence map `d` of the two
    /// says either changed (the answer is the same: a mark says where to
    /// compare, and where it says anything may differ the maps are
    /// compared whole).
    pub(crate) fn diff_by(
        &self,
        other: &Map,
        d: &Divergence,
        start: u64,
        n: u64,
        bits: &mut [u8],
    ) -> Result<u64> {
        let end = self.diff_range(other, start, n, bits)?;
        let mut cmp = Compare::new()?;
        let mut changed = 0u64;
        let last = end.div_ceil(AREA_BLOCKS);
        let mut a = start / AREA_BLOCKS;
        while let Some(x) = d.next_area(a, last) {
            let lo = (x * AREA_BLOCKS).max(start);
            let hi = ((x + 1) * AREA_BLOCKS).min(end);
            match d.area(x) {
                AreaState::Clean => {}
                AreaState::All => {
                    let stop = d.all_until(x).min(last);
                    let hi = stop.saturating_mul(AREA_BLOCKS).min(end);
                    changed += self.compare(other, start, lo, hi, bits, &mut cmp)?;
                    a = stop.max(x + 1);
                    continue;
                }
                // Many marks: one pass over both leaves costs less than a
                // look-up per block.
                AreaState::Bits(w) if w.iter().map(|x| x.count_ones()).sum::<u32>() > 16 => {
                    changed += self.compare(other, start, lo, hi, bits, &mut cmp)?;
                }
                AreaState::Bits(w) => {
                    for b in lo..hi {
                        let i = b % AREA_BLOCKS;
                        if w.get((i / 64) as usize)
                            .is_none_or(|x| x & (1 << (i % 64)) == 0)
                        {
                            continue;
                        }
                        // One map's lock at a time.
                        let mine = self.lock().get(b);
                        if mine == other.lock().get(b) {
                            continue;
                        }
                        let bit = b - start;
                        if let Some(byte) = bits.get_mut((bit / 8) as usize) {
                            *byte |= 1 << (bit % 8);
                            changed += 1;
                        }
                    }
                }
            }
            a = x + 1;
        }
        Ok(changed)
    }

    /// Marks in `d` every block at which this map and `other` point at
    /// different places, as when assembly rebuilt both.
    pub(crate) fn seed(&self, other: &Map, d: &Divergence) -> Result {
        let n = self.size_blocks().min(other.size_blocks());
        let chunk = SEED_BLOCKS;
        let mut bits = KVVec::from_elem(0u8, (chunk / 8) as usize, GFP_KERNEL)?;
        let mut cmp = Compare::new()?;
        let mut lba = 0;
        while lba < n {
            let end = (lba + chunk).min(n);
            bits.iter_mut().for_each(|b| *b = 0);
            if self.compare(other, lba, lba, end, &mut bits, &mut cmp)? != 0 {
                // Runs of blocks that differ, marked a run at a time.
                let set = |b: u64| {
                    bits.get((b / 8) as usize)
                        .is_some_and(|x| x & (1 << (b % 8)) != 0)
                };
                let mut b = 0;
                while b < end - lba {
                    if !set(b) {
                        b += 1;
                        continue;
                    }
                    let from = b;
                    while b < end - lba && set(b) {
                        b += 1;
                    }
                    d.mark(lba + from, b - from);
                }
            }
            lba = end;
        }
        Ok(())
    }

    /// Checks a diff's range and returns its end.
    pub(super) fn diff_range(&self, other: &Map, start: u64, n: u64, bits: &[u8]) -> Result<u64> {
        let end = start.checked_add(n).ok_or(EINVAL)?;
        let room = (bits.len() as u64).saturating_mul(8);
        if room < n || end > self.size_blocks() || end > other.size_blocks() {
            return Err(EINVAL);
        }
        Ok(end)
    }

    /// Sets bit `b - origin` of `bits` for every block `b` of `lba .. end`
    /// at which this map and `other` differ; returns how many.
    pub(super) fn compare(
        &self,
        other: &Map,
        origin: u64,
        mut lba: u64,
        end: u64,
        bits: &mut [u8],
        cmp: &mut Compare,
    ) -> Result<u64> {
        let page = PAGE_SLOTS as u64 * LEAF_ENTRIES;
        let mut changed = 0u64;
        while lba < end {
            let i = slot_index(lba / LEAF_ENTRIES).ok_or(EINVAL)?;
            let (pa, sa) = self.lock().keys(i);
            let (pb, sb) = other.lock().keys(i);
            if pa.is_some() && pa == pb {
                lba = (lba / page + 1) * page;
                continue;
            }
            let to = ((lba / LEAF_ENTRIES + 1) * LEAF_ENTRIES).min(end);
            if sa != sb {
                self.lock().entries(i, &mut cmp.mine);
                other.lock().entries(i, &mut cmp.theirs);
                for b in lba..to {
                    let k = (b % LEAF_ENTRIES) as usize;
                    if cmp.mine.get(k) == cmp.theirs.get(k) {
                        continue;
                    }
                    let bit = b - origin;
                    if let Some(byte) = bits.get_mut((bit / 8) as usize) {
                        *byte |= 1 << (bit % 8);
                        changed += 1;
                    }
                }
            }
            lba = to;
        }
        Ok(changed)
    }
}
