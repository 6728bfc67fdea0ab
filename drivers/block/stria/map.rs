// SPDX-License-Identifier: GPL-2.0

//! A volume's forward map: where each of its 4 KiB blocks lives now.
//!
//! A full-pointer map, one 8-byte entry per block, kept in leaves of one
//! page (512 entries) that exist only where something was written: a thin
//! volume costs memory for what it holds, not for its size. The directory
//! of leaves is one small entry per 2 MiB of volume.
//!
//! An instant copy points its own directory at its source's leaves; a
//! leaf is copied when either side first writes into it (see
//! `Documentation/stria-copy.rst`).

use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Relaxed;
use kernel::sync::lock::spinlock::SpinLockBackend;
use kernel::sync::lock::Guard;
use kernel::sync::Arc;
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

/// A page of entries, shared by the maps of instant copies until one of
/// them writes into it.
///
/// # Invariants
///
/// `entries` and `holders` change only with the writer's state lock held,
/// or before the array serves I/O: so a leaf is never copied while an entry
/// of it moves. They are atomics so that reads need no more than the map's
/// own lock.
pub(crate) struct Leaf {
    /// Directories that point at it.
    holders: Atomic<u32>,
    /// Entries mapped.
    count: Atomic<u32>,
    /// Pass of the last [`Locked::for_each_mapped`] that counted it.
    seen: Atomic<u64>,
    /// Exactly a page, allocated apart: with the counters beside it, a
    /// leaf would take a slab object of twice that.
    entries: KBox<[Atomic<u64>; LEAF_ENTRIES as usize]>,
}

impl Leaf {
    fn get(&self, i: u64) -> u64 {
        self.entries.get(i as usize).map_or(0, |e| e.load(Relaxed))
    }

    fn put(&self, i: u64, v: u64) {
        if let Some(e) = self.entries.get(i as usize) {
            e.store(v, Relaxed);
        }
    }

    fn shared(&self) -> bool {
        self.holders.load(Relaxed) > 1
    }

    fn mapped(&self) -> u64 {
        u64::from(self.count.load(Relaxed))
    }
}

/// A new, empty leaf for [`Locked::install`].
pub(crate) struct NewLeaf(Arc<Leaf>);

impl NewLeaf {
    /// Allocates one with `flags`.
    pub(crate) fn new(flags: kernel::alloc::Flags) -> Result<Self> {
        let entries = KBox::init(pin_init::init_array_from_fn(|_| Atomic::new(0u64)), flags)?;
        let leaf = Arc::new(
            Leaf {
                holders: Atomic::new(1),
                count: Atomic::new(0),
                seen: Atomic::new(0),
                entries,
            },
            flags,
        )?;
        Ok(NewLeaf(leaf))
    }
}

/// The leaves, under the map's lock.
struct Inner {
    /// Leaf `i` covers blocks `i * LEAF_ENTRIES ..`.
    leaves: KVVec<Option<Arc<Leaf>>>,
    /// Blocks currently mapped.
    mapped: u64,
    /// Leaves pointed at.
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
    /// Bytes of leaves other maps point at too (part of `leaf_bytes`).
    pub(crate) shared_leaf_bytes: u64,
    /// Mapped blocks in those shared leaves (part of `mapped`).
    pub(crate) shared_mapped: u64,
}

/// The leaves a map let go of, to be freed where sleeping is allowed.
pub(crate) struct Released(#[allow(dead_code)] KVVec<Option<Arc<Leaf>>>);

/// Drops `leaf` from a directory: when no other one points at it, every
/// entry it holds is gone, and `dropped` sees each.
fn release(leaf: &Leaf, dropped: &mut impl FnMut(Entry)) {
    if leaf.holders.fetch_sub(1, Relaxed) == 1 {
        for e in leaf.entries.iter() {
            let v = e.load(Relaxed);
            if v != 0 {
                dropped(Entry::decode(v));
            }
        }
    }
}

/// An empty directory of leaves, for [`Map::resize`].
pub(crate) struct Directory(KVVec<Option<Arc<Leaf>>>);

impl Directory {
    /// One for a volume of `size_blocks` blocks.
    pub(crate) fn new(size_blocks: u64) -> Result<Self> {
        Ok(Directory(empty_dir(size_blocks)?))
    }
}

fn empty_dir(size_blocks: u64) -> Result<KVVec<Option<Arc<Leaf>>>> {
    let n = usize::try_from(size_blocks.div_ceil(LEAF_ENTRIES)).map_err(|_| EINVAL)?;
    let mut leaves = KVVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        leaves.push(None, GFP_KERNEL)?;
    }
    Ok(leaves)
}

impl Map {
    /// An empty map for a volume of `size_blocks` blocks.
    pub(crate) fn new(size_blocks: u64) -> Result<impl PinInit<Self, Error>> {
        let leaves = empty_dir(size_blocks)?;
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
    /// Entries no map points at any more go to `dropped`. Call with the
    /// writer's state lock held when the map is in service, after
    /// trimming what is cut off (so that the last leaf is not shared).
    /// `dir` is an empty directory for the new size, made beforehand so
    /// that nothing is allocated under a lock.
    pub(crate) fn resize(
        &self,
        dir: Directory,
        size_blocks: u64,
        mut dropped: impl FnMut(Entry),
    ) -> Result<Released> {
        let mut leaves = dir.0;
        let n = leaves.len();
        if u64::try_from(n).ok() != Some(size_blocks.div_ceil(LEAF_ENTRIES)) {
            return Err(EINVAL);
        }
        let mut guard = self.inner.lock();
        let g = &mut *guard;
        for (new, old) in leaves.iter_mut().zip(g.leaves.iter_mut()) {
            *new = old.take();
        }
        // What no longer fits is dropped with the old directory.
        let mut gone = 0u64;
        for l in g.leaves.iter().skip(n).flatten() {
            gone += l.mapped();
            release(l, &mut dropped);
            g.nr_leaves = g.nr_leaves.saturating_sub(1);
        }
        // The tail of the last leaf past the new end.
        let tail = size_blocks % LEAF_ENTRIES;
        if tail != 0 {
            if let Some(Some(last)) = leaves.last() {
                for i in tail..LEAF_ENTRIES {
                    let v = last.get(i);
                    if v != 0 && !last.shared() {
                        gone += 1;
                        last.put(i, 0);
                        last.count.fetch_sub(1, Relaxed);
                        dropped(Entry::decode(v));
                    }
                }
            }
        }
        g.mapped = g.mapped.saturating_sub(gone);
        g.size_blocks = size_blocks;
        core::mem::swap(&mut g.leaves, &mut leaves);
        Ok(Released(leaves))
    }

    /// The first leaf of blocks `lba .. lba + n` that a write cannot go
    /// into as it is: missing (when `create`; trims need none) or shared
    /// with another map.
    pub(crate) fn leaf_wanted(&self, lba: u64, n: u64, create: bool) -> Result<Option<u64>> {
        let end = lba.checked_add(n).ok_or(EINVAL)?;
        let g = self.inner.lock();
        if n == 0 {
            return Ok(None);
        }
        if end > g.size_blocks {
            return Err(EINVAL);
        }
        let mut i = lba / LEAF_ENTRIES;
        while i * LEAF_ENTRIES < end {
            let slot = g.leaves.get(usize::try_from(i).map_err(|_| EINVAL)?);
            match slot {
                Some(Some(l)) if l.shared() => return Ok(Some(i)),
                Some(None) if create => return Ok(Some(i)),
                _ => {}
            }
            i += 1;
        }
        Ok(None)
    }

    /// Makes blocks `lba .. lba + n` writable, where nothing counts live
    /// blocks (assembly, tests); leaves are allocated with `flags`.
    pub(crate) fn prepare(&self, lba: u64, n: u64, flags: kernel::alloc::Flags) -> Result {
        self.prepare_with(lba, n, true, flags)
    }

    /// [`Self::prepare`], without missing leaves unless `create`.
    pub(crate) fn prepare_with(
        &self,
        lba: u64,
        n: u64,
        create: bool,
        flags: kernel::alloc::Flags,
    ) -> Result {
        self.prepare_each(lba, n, create, flags, |i, leaf| {
            self.lock().install(i, leaf, |_| {})
        })
    }

    /// Allocates a leaf with `flags` for every leaf of blocks `lba .. lba +
    /// n` that [`Self::leaf_wanted`] names and hands it to `put` with its
    /// index, which should [`Locked::install`] it.
    pub(crate) fn prepare_each(
        &self,
        lba: u64,
        n: u64,
        create: bool,
        flags: kernel::alloc::Flags,
        mut put: impl FnMut(u64, NewLeaf),
    ) -> Result {
        let end = lba.checked_add(n).ok_or(EINVAL)?;
        let mut from = lba;
        while let Some(i) = self.leaf_wanted(from, end.saturating_sub(from), create)? {
            put(i, NewLeaf::new(flags)?);
            from = (i + 1) * LEAF_ENTRIES;
        }
        Ok(())
    }

    /// Takes the map's lock.
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked(self.inner.lock())
    }

    /// Points this map, empty and of the same size, at every leaf of
    /// `src`: a copy that costs a directory entry per 2 MiB. Call with the
    /// writer's state lock held; it does not allocate.
    pub(crate) fn share_from(&self, src: &Map) -> Result {
        // The empty directory, filled outside this map's lock: one map
        // lock at a time.
        let mut dir = KVVec::new();
        core::mem::swap(&mut self.inner.lock().leaves, &mut dir);
        let r = {
            let s = src.inner.lock();
            if s.leaves.len() != dir.len() || dir.iter().any(Option::is_some) {
                Err(EINVAL)
            } else {
                for (d, l) in dir.iter_mut().zip(s.leaves.iter()) {
                    if let Some(l) = l {
                        l.holders.fetch_add(1, Relaxed);
                        *d = Some(l.clone());
                    }
                }
                Ok((s.mapped, s.nr_leaves))
            }
        };
        let mut g = self.inner.lock();
        core::mem::swap(&mut g.leaves, &mut dir);
        let (mapped, nr_leaves) = r?;
        g.mapped = mapped;
        g.nr_leaves = nr_leaves;
        Ok(())
    }

    /// Lets go of every leaf, as when the volume is deleted; entries no
    /// other map points at go to `dropped`. Call with the writer's state
    /// lock held; drop what it returns after letting go of that lock.
    pub(crate) fn release_all(&self, mut dropped: impl FnMut(Entry)) -> Result<Released> {
        let mut g = self.inner.lock();
        let mut empty = KVVec::new();
        core::mem::swap(&mut g.leaves, &mut empty);
        for l in empty.iter().flatten() {
            release(l, &mut dropped);
        }
        g.mapped = 0;
        g.nr_leaves = 0;
        g.size_blocks = 0;
        Ok(Released(empty))
    }

    /// Memory use.
    pub(crate) fn stats(&self) -> MapStats {
        let g = self.inner.lock();
        let dir = (g.leaves.len() as u64)
            .saturating_mul(core::mem::size_of::<Option<Arc<Leaf>>>() as u64);
        let mut st = MapStats {
            mapped: g.mapped,
            leaf_bytes: g.nr_leaves.saturating_mul(LEAF_ENTRIES * 8),
            dir_bytes: dir,
            ..MapStats::default()
        };
        for l in g.leaves.iter().flatten().filter(|l| l.shared()) {
            st.shared_leaf_bytes += LEAF_ENTRIES * 8;
            st.shared_mapped += l.mapped();
        }
        st
    }
}

/// The map, locked.
pub(crate) struct Locked<'a>(Guard<'a, Inner, SpinLockBackend>);

impl Locked<'_> {
    fn leaf(&self, lba: u64) -> Option<&Arc<Leaf>> {
        self.0
            .leaves
            .get(usize::try_from(lba / LEAF_ENTRIES).ok()?)?
            .as_ref()
    }

    /// Where block `lba` lives.
    pub(crate) fn get(&mut self, lba: u64) -> Entry {
        self.leaf(lba).map_or(Entry::Unmapped, |l| {
            Entry::decode(l.get(lba % LEAF_ENTRIES))
        })
    }

    /// Points block `lba` at `e` and returns where it was. Fails with
    /// `ENOMEM` when its leaf was not prepared (missing or shared) and
    /// `EINVAL` for an entry that cannot be encoded.
    pub(crate) fn set(&mut self, lba: u64, e: Entry) -> Result<Entry> {
        let v = e.encode().ok_or(EINVAL)?;
        let leaf = self.leaf(lba).ok_or(ENOMEM)?;
        if leaf.shared() {
            return Err(ENOMEM);
        }
        let i = lba % LEAF_ENTRIES;
        let old = Entry::decode(leaf.get(i));
        leaf.put(i, v);
        match (old, e) {
            (Entry::Unmapped, Entry::Unmapped) => {}
            (Entry::Unmapped, _) => {
                leaf.count.fetch_add(1, Relaxed);
                self.0.mapped += 1;
            }
            (_, Entry::Unmapped) => {
                leaf.count.fetch_sub(1, Relaxed);
                self.0.mapped = self.0.mapped.saturating_sub(1);
            }
            _ => {}
        }
        Ok(old)
    }

    /// Puts `leaf` at directory index `i` if a write could not go there:
    /// where there was none, or in place of a shared one, whose entries it
    /// takes (and `added` sees each mapped one, now pointed at once more).
    pub(crate) fn install(&mut self, i: u64, leaf: NewLeaf, mut added: impl FnMut(Entry)) {
        let inner = &mut *self.0;
        let Some(slot) = usize::try_from(i)
            .ok()
            .and_then(|i| inner.leaves.get_mut(i))
        else {
            return;
        };
        match slot {
            None => {
                *slot = Some(leaf.0);
                inner.nr_leaves += 1;
            }
            Some(old) if old.shared() => {
                for (n, o) in leaf.0.entries.iter().zip(old.entries.iter()) {
                    let v = o.load(Relaxed);
                    if v != 0 {
                        n.store(v, Relaxed);
                        added(Entry::decode(v));
                    }
                }
                leaf.0.count.store(old.count.load(Relaxed), Relaxed);
                old.holders.fetch_sub(1, Relaxed);
                *slot = Some(leaf.0);
            }
            Some(_) => {}
        }
    }

    /// Unmaps blocks `lba .. lba + n`, skipping leaves that do not exist
    /// (nothing there is mapped); `dropped` sees every entry unmapped.
    /// Fails with `ENOMEM`, changing nothing, if a leaf is shared.
    pub(crate) fn unmap(&mut self, lba: u64, n: u64, mut dropped: impl FnMut(Entry)) -> Result {
        let end = lba.saturating_add(n);
        let mut pos = lba;
        while pos < end {
            if self.leaf(pos).is_some_and(|l| l.shared()) {
                return Err(ENOMEM);
            }
            pos = (pos / LEAF_ENTRIES + 1) * LEAF_ENTRIES;
        }
        let mut pos = lba;
        while pos < end {
            let leaf_end = (pos / LEAF_ENTRIES + 1) * LEAF_ENTRIES;
            let stop = leaf_end.min(end);
            if self.leaf(pos).is_none() {
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
        Ok(())
    }

    /// Calls `f` with every mapped entry, skipping leaves an earlier call
    /// with the same non-zero `pass` has seen (in this map or another that
    /// shares them), so that each leaf counts once.
    pub(crate) fn for_each_mapped(&mut self, pass: u64, mut f: impl FnMut(Entry)) {
        for leaf in self.0.leaves.iter().flatten() {
            if pass != 0 && leaf.seen.xchg(pass, Relaxed) == pass {
                continue;
            }
            for e in leaf.entries.iter() {
                let v = e.load(Relaxed);
                if v != 0 {
                    f(Entry::decode(v));
                }
            }
        }
    }

    /// Points block `lba` at `new` only if it still points at `old`; both
    /// are places of the same data, so a shared leaf changes in place, for
    /// every map that points at it.
    pub(crate) fn replace(&mut self, lba: u64, old: Entry, new: Entry) -> bool {
        let (Some(o), Some(n)) = (old.encode(), new.encode()) else {
            return false;
        };
        if o == 0 || n == 0 {
            return false;
        }
        let Some(leaf) = self.leaf(lba) else {
            return false;
        };
        let i = lba % LEAF_ENTRIES;
        if leaf.get(i) != o {
            return false;
        }
        leaf.put(i, n);
        true
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
        drop(map.resize(
            Directory::new(LEAF_ENTRIES + 10)?,
            LEAF_ENTRIES + 10,
            |_| {},
        )?);
        assert_eq!(map.size_blocks(), LEAF_ENTRIES + 10);
        let st = map.stats();
        assert_eq!(st.mapped, 2);
        assert_eq!(st.leaf_bytes, 2 * LEAF_ENTRIES * 8);
        drop(map.resize(Directory::new(3 * LEAF_ENTRIES)?, 3 * LEAF_ENTRIES, |_| {})?);
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
        m.unmap(0, 3 * LEAF_ENTRIES, |_| {})?;
        assert_eq!(m.get(7), Entry::Unmapped);
        drop(m);
        assert_eq!(map.stats().mapped, 0);
        Ok(())
    }

    #[test]
    fn copies_share_leaves_until_written() -> Result {
        let disk = |b| Entry::Disk {
            member: 1,
            block: b,
        };
        let src = KBox::pin_init(Map::new(4 * LEAF_ENTRIES)?, GFP_KERNEL)?;
        src.prepare(0, 2 * LEAF_ENTRIES, GFP_KERNEL)?;
        {
            let mut m = src.lock();
            m.set(3, disk(100))?;
            m.set(LEAF_ENTRIES + 1, disk(200))?;
        }
        let copy = KBox::pin_init(Map::new(4 * LEAF_ENTRIES)?, GFP_KERNEL)?;
        copy.share_from(&src)?;
        let st = copy.stats();
        assert_eq!(st.mapped, 2);
        assert_eq!(st.shared_leaf_bytes, 2 * LEAF_ENTRIES * 8);
        assert_eq!(st.shared_mapped, 2);
        // Neither side writes into a shared leaf without copying it.
        assert_eq!(src.lock().set(3, disk(101)).err(), Some(ENOMEM));
        assert_eq!(src.lock().unmap(0, 10, |_| {}).err(), Some(ENOMEM));
        assert_eq!(src.leaf_wanted(0, 1, true)?, Some(0));
        assert_eq!(src.leaf_wanted(2 * LEAF_ENTRIES, 1, false)?, None);
        assert_eq!(src.leaf_wanted(2 * LEAF_ENTRIES, 1, true)?, Some(2));
        // Copying the leaf sees every entry once more.
        let mut added = 0;
        let leaf = NewLeaf::new(GFP_KERNEL)?;
        src.lock().install(0, leaf, |_| added += 1);
        assert_eq!(added, 1);
        assert_eq!(src.lock().set(3, disk(101))?, disk(100));
        assert_eq!(copy.lock().get(3), disk(100));
        assert_eq!(src.lock().get(3), disk(101));
        // A move of shared data shows on both sides.
        assert!(copy.lock().replace(LEAF_ENTRIES + 1, disk(200), disk(300)));
        assert_eq!(src.lock().get(LEAF_ENTRIES + 1), disk(300));
        // Each leaf counts once in a pass over both maps.
        let mut seen = 0;
        src.lock().for_each_mapped(7, |_| seen += 1);
        copy.lock().for_each_mapped(7, |_| seen += 1);
        assert_eq!(seen, 3);
        // Deleting the source: only what it alone held is gone.
        let (mut gone, mut last) = (0, Entry::Unmapped);
        drop(src.release_all(|e| {
            gone += 1;
            last = e;
        })?);
        assert_eq!((gone, last), (1, disk(101)));
        assert_eq!(copy.stats().shared_leaf_bytes, 0);
        assert_eq!(copy.lock().get(LEAF_ENTRIES + 1), disk(300));
        assert_eq!(copy.lock().set(3, disk(5))?, disk(100));
        Ok(())
    }
}
