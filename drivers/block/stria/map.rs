// SPDX-License-Identifier: GPL-2.0

//! A volume's forward map: where each of its 4 KiB blocks lives now.
//!
//! A full-pointer map, one 8-byte entry per block, kept in leaves of one
//! page (512 entries) that exist only where something was written: a thin
//! volume costs memory for what it holds, not for its size. The directory
//! of leaves is one small entry per 2 MiB of volume.

use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::sync::lock::spinlock::SpinLockBackend;
use kernel::sync::lock::Guard;
use kernel::sync::SpinLock;

/// Entries per leaf: a page of them.
pub(crate) const LEAF_ENTRIES: u64 = 512;

const TAG_SHIFT: u32 = 62;
const TAG_DISK: u64 = 1;
const TAG_MEM: u64 = 2;
const MEMBER_SHIFT: u32 = 48;
const BLOCK_MASK: u64 = (1 << MEMBER_SHIFT) - 1;
const SLOT_SHIFT: u32 = 32;

/// Where a block lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// Never written (or discarded): reads as zeros.
    Unmapped,
    /// On member `member` at block `block` (from the start of the member).
    Disk {
        /// Member index.
        member: u8,
        /// Member block, below 2^48.
        block: u64,
    },
    /// Still in the memory of stripe buffer `slot`, at block `offset` of
    /// its data space: the stripe is not yet written.
    Mem {
        /// Stripe buffer.
        slot: u16,
        /// Block within its data space.
        offset: u32,
    },
}

impl Entry {
    /// The 8-byte form kept in a leaf.
    pub(crate) fn encode(self) -> Option<u64> {
        match self {
            Entry::Unmapped => Some(0),
            Entry::Disk { member, block } if block <= BLOCK_MASK && member < 64 => {
                Some((TAG_DISK << TAG_SHIFT) | (u64::from(member) << MEMBER_SHIFT) | block)
            }
            Entry::Disk { .. } => None,
            Entry::Mem { slot, offset } => {
                Some((TAG_MEM << TAG_SHIFT) | (u64::from(slot) << SLOT_SHIFT) | u64::from(offset))
            }
        }
    }

    /// Decodes a leaf entry; anything unknown reads as unmapped (leaves are
    /// only ever written by [`Self::encode`]).
    pub(crate) fn decode(v: u64) -> Entry {
        match v >> TAG_SHIFT {
            TAG_DISK => Entry::Disk {
                member: ((v >> MEMBER_SHIFT) & 0x3f) as u8,
                block: v & BLOCK_MASK,
            },
            TAG_MEM => Entry::Mem {
                slot: ((v >> SLOT_SHIFT) & 0xffff) as u16,
                offset: v as u32,
            },
            _ => Entry::Unmapped,
        }
    }
}

/// A page of entries.
type Leaf = [u64; LEAF_ENTRIES as usize];

/// The leaves, under the map's lock.
struct Inner {
    /// Leaf `i` covers blocks `i * LEAF_ENTRIES ..`.
    leaves: KVVec<Option<KBox<Leaf>>>,
    /// Blocks currently mapped.
    mapped: u64,
    /// Leaves allocated.
    nr_leaves: u64,
    /// Size of the volume in blocks.
    size_blocks: u64,
}

/// The forward map of one volume.
#[pin_data]
pub(crate) struct Map {
    #[pin]
    inner: SpinLock<Inner>,
}

/// Memory use of a map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MapStats {
    /// Blocks mapped.
    pub(crate) mapped: u64,
    /// Bytes of leaves: 8 per block they cover.
    pub(crate) leaf_bytes: u64,
    /// Bytes of the directory of leaves: 8 per 2 MiB of volume.
    pub(crate) dir_bytes: u64,
}

impl Map {
    /// An empty map for a volume of `size_blocks` blocks.
    pub(crate) fn new(size_blocks: u64) -> Result<impl PinInit<Self, Error>> {
        let n = usize::try_from(size_blocks.div_ceil(LEAF_ENTRIES)).map_err(|_| EINVAL)?;
        let mut leaves = KVVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            leaves.push(None, GFP_KERNEL)?;
        }
        Ok(try_pin_init!(Self {
            inner <- new_spinlock!(Inner {
                leaves,
                mapped: 0,
                nr_leaves: 0,
                size_blocks,
            }),
        }))
    }

    /// Size of the volume in blocks.
    pub(crate) fn size_blocks(&self) -> u64 {
        self.inner.lock().size_blocks
    }

    /// Changes the volume's size to `size_blocks`; blocks beyond the new
    /// end are forgotten (unmapped), so that growing again shows zeros.
    pub(crate) fn resize(&self, size_blocks: u64) -> Result {
        let n = usize::try_from(size_blocks.div_ceil(LEAF_ENTRIES)).map_err(|_| EINVAL)?;
        let mut leaves = KVVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            leaves.push(None, GFP_KERNEL)?;
        }
        let mut guard = self.inner.lock();
        let g = &mut *guard;
        for (new, old) in leaves.iter_mut().zip(g.leaves.iter_mut()) {
            *new = old.take();
        }
        // What no longer fits is dropped with the old directory.
        let mut dropped = 0u64;
        for l in g.leaves.iter().skip(n).flatten() {
            dropped += l.iter().filter(|&&v| v != 0).count() as u64;
            g.nr_leaves = g.nr_leaves.saturating_sub(1);
        }
        // The tail of the last leaf past the new end.
        let tail = (size_blocks % LEAF_ENTRIES) as usize;
        if tail != 0 {
            if let Some(Some(last)) = leaves.last_mut() {
                for v in last.iter_mut().skip(tail) {
                    if *v != 0 {
                        dropped += 1;
                        *v = 0;
                    }
                }
            }
        }
        g.mapped = g.mapped.saturating_sub(dropped);
        g.size_blocks = size_blocks;
        core::mem::swap(&mut g.leaves, &mut leaves);
        // Freeing vmalloc'd memory may sleep: not under the lock.
        drop(guard);
        drop(leaves);
        Ok(())
    }

    /// Makes sure leaves exist for blocks `lba .. lba + n`, so that setting
    /// them under the lock never allocates; leaves are allocated with
    /// `flags` (`GFP_NOWAIT` where sleeping is not allowed).
    pub(crate) fn prepare(&self, lba: u64, n: u64, flags: kernel::alloc::Flags) -> Result {
        let end = lba.checked_add(n).ok_or(EINVAL)?;
        if end > self.size_blocks() {
            return Err(EINVAL);
        }
        let mut i = lba / LEAF_ENTRIES;
        while i * LEAF_ENTRIES < end {
            let idx = usize::try_from(i).map_err(|_| EINVAL)?;
            let present = self
                .inner
                .lock()
                .leaves
                .get(idx)
                .is_some_and(Option::is_some);
            if !present {
                let leaf = KBox::init(pin_init::init_zeroed::<Leaf>(), flags)?;
                let mut g = self.inner.lock();
                let g = &mut *g;
                let slot = g.leaves.get_mut(idx).ok_or(EINVAL)?;
                // Someone else may have installed it meanwhile.
                if slot.is_none() {
                    *slot = Some(leaf);
                    g.nr_leaves += 1;
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// Takes the map's lock.
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked(self.inner.lock())
    }

    /// Memory use.
    pub(crate) fn stats(&self) -> MapStats {
        let g = self.inner.lock();
        let dir = (g.leaves.len() as u64)
            .saturating_mul(core::mem::size_of::<Option<KBox<Leaf>>>() as u64);
        MapStats {
            mapped: g.mapped,
            leaf_bytes: g.nr_leaves.saturating_mul(LEAF_ENTRIES * 8),
            dir_bytes: dir,
        }
    }
}

/// The map, locked.
pub(crate) struct Locked<'a>(Guard<'a, Inner, SpinLockBackend>);

impl Locked<'_> {
    fn slot(&mut self, lba: u64) -> Option<&mut u64> {
        let leaf = self
            .0
            .leaves
            .get_mut(usize::try_from(lba / LEAF_ENTRIES).ok()?)?
            .as_mut()?;
        leaf.get_mut((lba % LEAF_ENTRIES) as usize)
    }

    /// Where block `lba` lives.
    pub(crate) fn get(&mut self, lba: u64) -> Entry {
        self.slot(lba)
            .map_or(Entry::Unmapped, |v| Entry::decode(*v))
    }

    /// Points block `lba` at `e` and returns where it was. Fails with
    /// `ENOMEM` when its leaf was not prepared and `EINVAL` for an entry
    /// that cannot be encoded.
    pub(crate) fn set(&mut self, lba: u64, e: Entry) -> Result<Entry> {
        let v = e.encode().ok_or(EINVAL)?;
        let slot = self.slot(lba).ok_or(ENOMEM)?;
        let old = Entry::decode(*slot);
        *slot = v;
        let inner = &mut *self.0;
        match (old, e) {
            (Entry::Unmapped, Entry::Unmapped) => {}
            (Entry::Unmapped, _) => inner.mapped += 1,
            (_, Entry::Unmapped) => inner.mapped = inner.mapped.saturating_sub(1),
            _ => {}
        }
        Ok(old)
    }

    /// Unmaps blocks `lba .. lba + n`, skipping leaves that do not exist
    /// (nothing there is mapped); `dropped` sees every entry unmapped.
    pub(crate) fn unmap(&mut self, lba: u64, n: u64, mut dropped: impl FnMut(Entry)) {
        let end = lba.saturating_add(n);
        let mut pos = lba;
        while pos < end {
            let leaf_end = (pos / LEAF_ENTRIES + 1) * LEAF_ENTRIES;
            let stop = leaf_end.min(end);
            if self.slot(pos).is_none() {
                pos = stop;
                continue;
            }
            for b in pos..stop {
                if let Ok(old) = self.set(b, Entry::Unmapped) {
                    if old != Entry::Unmapped {
                        dropped(old);
                    }
                }
            }
            pos = stop;
        }
    }

    /// Calls `f` with every mapped entry.
    pub(crate) fn for_each_mapped(&mut self, mut f: impl FnMut(Entry)) {
        for leaf in self.0.leaves.iter().flatten() {
            for &v in leaf.iter() {
                if v != 0 {
                    f(Entry::decode(v));
                }
            }
        }
    }

    /// Points block `lba` at `new` only if it still points at `old`.
    pub(crate) fn replace(&mut self, lba: u64, old: Entry, new: Entry) -> bool {
        if self.get(lba) != old {
            return false;
        }
        self.set(lba, new).is_ok()
    }
}

#[kernel::prelude::kunit_tests(stria_map)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let cases = [
            Entry::Unmapped,
            Entry::Disk {
                member: 0,
                block: 0,
            },
            Entry::Disk {
                member: 31,
                block: BLOCK_MASK,
            },
            Entry::Mem { slot: 0, offset: 0 },
            Entry::Mem {
                slot: u16::MAX,
                offset: u32::MAX,
            },
        ];
        for e in cases {
            let v = e.encode();
            assert!(v.is_some());
            assert_eq!(Entry::decode(v.unwrap_or(0)), e);
        }
        // Blocks beyond 48 bits do not fit and must be refused, not cut.
        assert_eq!(
            Entry::Disk {
                member: 1,
                block: BLOCK_MASK + 1
            }
            .encode(),
            None
        );
    }

    #[test]
    fn leaves_only_where_written() -> Result {
        let map = KBox::pin_init(Map::new(10 * LEAF_ENTRIES + 3)?, GFP_KERNEL)?;
        assert_eq!(map.stats().mapped, 0);
        let empty = map.stats();
        assert_eq!(empty.leaf_bytes, 0);
        assert_eq!(empty.dir_bytes, 11 * 8);
        // An unprepared leaf refuses the write rather than allocating under
        // the lock.
        assert_eq!(map.lock().set(5, Entry::Unmapped).err(), Some(ENOMEM));
        map.prepare(LEAF_ENTRIES - 1, 2, GFP_KERNEL)?;
        let disk = Entry::Disk {
            member: 2,
            block: 77,
        };
        {
            let mut m = map.lock();
            assert_eq!(m.set(LEAF_ENTRIES - 1, disk)?, Entry::Unmapped);
            assert_eq!(m.set(LEAF_ENTRIES, disk)?, Entry::Unmapped);
            assert_eq!(m.get(LEAF_ENTRIES), disk);
            assert_eq!(m.get(0), Entry::Unmapped);
        }
        let st = map.stats();
        assert_eq!(st.mapped, 2);
        assert_eq!(st.leaf_bytes, 2 * LEAF_ENTRIES * 8);
        // Beyond the end: refused.
        assert_eq!(
            map.prepare(10 * LEAF_ENTRIES + 3, 1, GFP_KERNEL).err(),
            Some(EINVAL)
        );
        Ok(())
    }

    #[test]
    fn resize_forgets_what_is_cut_off() -> Result {
        let map = KBox::pin_init(Map::new(3 * LEAF_ENTRIES)?, GFP_KERNEL)?;
        map.prepare(0, 3 * LEAF_ENTRIES, GFP_KERNEL)?;
        let disk = Entry::Disk {
            member: 0,
            block: 9,
        };
        {
            let mut m = map.lock();
            for lba in [0, 10, LEAF_ENTRIES + 20, 2 * LEAF_ENTRIES + 1] {
                m.set(lba, disk)?;
            }
        }
        map.resize(LEAF_ENTRIES + 10)?;
        assert_eq!(map.size_blocks(), LEAF_ENTRIES + 10);
        let st = map.stats();
        assert_eq!(st.mapped, 2);
        assert_eq!(st.leaf_bytes, 2 * LEAF_ENTRIES * 8);
        map.resize(3 * LEAF_ENTRIES)?;
        map.prepare(0, 3 * LEAF_ENTRIES, GFP_KERNEL)?;
        let mut m = map.lock();
        assert_eq!(m.get(10), disk);
        assert_eq!(m.get(LEAF_ENTRIES + 20), Entry::Unmapped);
        assert_eq!(m.get(2 * LEAF_ENTRIES + 1), Entry::Unmapped);
        Ok(())
    }

    #[test]
    fn replace_only_if_unchanged() -> Result {
        let map = KBox::pin_init(Map::new(LEAF_ENTRIES)?, GFP_KERNEL)?;
        map.prepare(0, LEAF_ENTRIES, GFP_KERNEL)?;
        let mem = Entry::Mem { slot: 3, offset: 9 };
        let newer = Entry::Mem { slot: 4, offset: 0 };
        let disk = Entry::Disk {
            member: 1,
            block: 500,
        };
        let mut m = map.lock();
        m.set(7, mem)?;
        assert!(m.replace(7, mem, disk));
        assert_eq!(m.get(7), disk);
        // An overwrite in a later stripe must not be undone by the older
        // stripe's completion.
        m.set(8, newer)?;
        assert!(!m.replace(8, mem, disk));
        assert_eq!(m.get(8), newer);
        m.set(8, Entry::Unmapped)?;
        // Unmapping runs over leaves that were never made.
        m.unmap(0, 3 * LEAF_ENTRIES, |_| {});
        assert_eq!(m.get(7), Entry::Unmapped);
        drop(m);
        assert_eq!(map.stats().mapped, 0);
        Ok(())
    }
}
