// SPDX-License-Identifier: GPL-2.0

//! A volume's forward map: where each of its 4 KiB blocks lives now.
//!
//! A full-pointer map, one 8-byte entry per block, kept in leaves of one
//! page (512 entries) that exist only where something was written: a thin
//! volume costs memory for what it holds, not for its size. The directory
//! of leaves is a slot per 2 MiB of volume, in pages of a GiB that exist
//! only where something was written too.
//!
//! An instant copy points its directory at its source's pages: its cost is
//! a pointer per GiB. Where either side first changes a slot in a shared
//! page, it gets a copy of the page, whose slots share the leaves. Where
//! either side first writes into a shared leaf, it gets a copy of the leaf
//! (a full pointer table) or, in the changed-blocks form, a delta: a bit
//! map of the entries it changed and their pointers, over the shared leaf
//! as a frozen base, until the delta is full and becomes a leaf (see
//! `Documentation/stria-copy.rst`).

mod dir;
pub(crate) mod diverge;
mod leaf;
mod marks;

mod compare;
mod locked;
mod tracks;

use crate::timed::Timed;
use crate::timed::TimedGuard;
use dir::Dir;
use dir::Pages;
use dir::PAGE_SLOTS;
use diverge::Divergence;
use diverge::Marks;
use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;
use kernel::sync::UniqueArc;
use leaf::Delta;
use leaf::LeafRef;

pub(crate) use leaf::Change;
pub(crate) use leaf::NewLeaf;
pub(crate) use leaf::Want;
pub(crate) use leaf::DELTA_ENTRIES;

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

/// Which copy metadata a map keeps where a write lands in a leaf it
/// shares with another map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// A full pointer table: the leaf is copied whole.
    Full,
    /// Pointers for changed blocks only: a delta over the shared leaf,
    /// which stays as it is as their frozen base, until the delta is full.
    Changed,
}

/// The leaves, under the map's lock.
struct Inner {
    /// LeafRef `i` covers blocks `i * LEAF_ENTRIES ..`.
    leaves: Dir,
    /// Blocks currently mapped.
    mapped: u64,
    /// Slots pointing at a leaf.
    nr_leaves: u64,
    /// Slots pointing at a delta.
    nr_deltas: u64,
    /// Size of the volume in blocks.
    size_blocks: u64,
    /// What writes into shared leaves make.
    form: Form,
    /// Its divergence map as a copy, whose own side it marks where it
    /// changes.
    track: Option<Arc<Divergence>>,
    /// The records of its changes that its copies' divergence maps read,
    /// which it marks where it changes.
    marks: KVec<Arc<Marks>>,
}

impl Inner {
    /// Marks blocks `lba .. lba + n` as changed in every record it keeps.
    fn mark(&self, lba: u64, n: u64) {
        for m in self.marks.iter() {
            m.mark(lba, n);
        }
        if let Some(t) = &self.track {
            t.mark(lba, n);
        }
    }

    fn count(&mut self, s: &LeafRef, n: i64) {
        let c = match s {
            LeafRef::Full(_) => &mut self.nr_leaves,
            LeafRef::Delta(_) => &mut self.nr_deltas,
        };
        *c = c.saturating_add_signed(n);
    }
}

/// The forward map of one volume.
#[pin_data]
pub(crate) struct Map {
    #[pin]
    inner: Timed<Inner>,
}

/// Memory use of a map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MapStats {
    /// Blocks mapped.
    pub(crate) mapped: u64,
    /// Bytes of leaves: 8 per block they cover.
    pub(crate) leaf_bytes: u64,
    /// Bytes of deltas over shared leaves.
    pub(crate) delta_bytes: u64,
    /// Deltas.
    pub(crate) deltas: u64,
    /// Bytes of the directory of leaves: a pointer per GiB of volume,
    /// and a page of slots (one per 2 MiB) per GiB written to.
    pub(crate) dir_bytes: u64,
    /// Directory pages other maps read too (their bytes are part of
    /// `dir_bytes`).
    pub(crate) shared_pages: u64,
    /// Bytes of directory pages, leaves and deltas other maps read too
    /// (part of the above).
    pub(crate) shared_bytes: u64,
}

/// The leaves a map let go of, to be freed where sleeping is allowed.
pub(crate) struct Released(#[allow(dead_code)] Pages);

/// A map's leaves detached from it, released a step at a time.
pub(crate) struct Detached(dir::Detached);

/// Slots of the directory one step of [`Detached::release_step`] looks at,
/// a leaf counting as many as it has entries: about 32 full leaves.
const RELEASE_STEP: usize = 16 * 1024;

impl Detached {
    /// Releases some more leaves; entries no other map points at go to
    /// `dropped`. Call with the writer's state lock held; returns whether
    /// every leaf is released.
    pub(crate) fn release_step(&mut self, dropped: &mut impl FnMut(Entry)) -> bool {
        self.0.release_step(RELEASE_STEP, dropped)
    }

    /// What is left to free once every leaf is released; drop it where
    /// sleeping is allowed.
    pub(crate) fn released(self) -> Released {
        Released(self.0.into_pages())
    }
}

/// An empty directory of leaves, for [`Map::resize`], and a page for
/// where the new end falls inside one.
pub(crate) struct Directory(Dir, Option<UniqueArc<dir::Page>>);

impl Directory {
    /// One for a volume of `size_blocks` blocks.
    pub(crate) fn new(size_blocks: u64) -> Result<Self> {
        let dir = empty_dir(size_blocks)?;
        let spare = if dir.len() % PAGE_SLOTS != 0 {
            Some(dir::Page::new(GFP_KERNEL)?)
        } else {
            None
        };
        Ok(Directory(dir, spare))
    }
}

fn empty_dir(size_blocks: u64) -> Result<Dir> {
    Dir::new(usize::try_from(size_blocks.div_ceil(LEAF_ENTRIES)).map_err(|_| EINVAL)?)
}

/// Directory slot `i`, if it can be one.
fn slot_index(i: u64) -> Option<usize> {
    usize::try_from(i).ok()
}

/// The part of blocks `lba .. end` in leaf `i`, as leaf indexes.
fn within(i: u64, lba: u64, end: u64) -> (u64, u64) {
    let first = i * LEAF_ENTRIES;
    (
        lba.saturating_sub(first).min(LEAF_ENTRIES),
        end.saturating_sub(first).min(LEAF_ENTRIES),
    )
}

impl Map {
    /// An empty map for a volume of `size_blocks` blocks.
    pub(crate) fn new(size_blocks: u64) -> Result<impl PinInit<Self, Error>> {
        let leaves = empty_dir(size_blocks)?;
        Ok(try_pin_init!(Self {
            inner <- Timed::new(new_spinlock!(Inner {
                leaves,
                mapped: 0,
                nr_leaves: 0,
                nr_deltas: 0,
                size_blocks,
                form: Form::Full,
                track: None,
                marks: KVec::new(),
            })),
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
    /// trimming what is cut off (so that the last leaf is its own).
    /// `dir` is an empty directory for the new size, made beforehand so
    /// that nothing is allocated under a lock.
    pub(crate) fn resize(
        &self,
        dir: Directory,
        size_blocks: u64,
        mut dropped: impl FnMut(Entry),
    ) -> Result<Released> {
        let n = dir.0.len();
        if u64::try_from(n).ok() != Some(size_blocks.div_ceil(LEAF_ENTRIES)) {
            return Err(EINVAL);
        }
        let mut guard = self.inner.lock();
        let g = &mut *guard;
        // What no longer fits is dropped with the old directory.
        let mut gone = 0u64;
        let (mut leaves, mut deltas) = (0u64, 0u64);
        let cut = g.leaves.resize(
            dir.0,
            dir.1,
            &mut |s| {
                gone += s.mapped();
                match s {
                    LeafRef::Full(_) => leaves += 1,
                    LeafRef::Delta(_) => deltas += 1,
                }
            },
            &mut dropped,
        );
        g.nr_leaves = g.nr_leaves.saturating_sub(leaves);
        g.nr_deltas = g.nr_deltas.saturating_sub(deltas);
        // The tail of the last leaf past the new end.
        let tail = size_blocks % LEAF_ENTRIES;
        let last = n.checked_sub(1);
        let own = last.is_some_and(|i| g.leaves.writable(i));
        if let (true, true, Some(LeafRef::Full(last))) =
            (tail != 0, own, last.and_then(|i| g.leaves.get(i)))
        {
            if !last.shared() {
                for i in tail..LEAF_ENTRIES {
                    let v = last.get(i);
                    if v != 0 {
                        gone += 1;
                        last.put(i, 0);
                        last.count.fetch_sub(1, Relaxed);
                        dropped(Entry::decode(v));
                    }
                }
            }
        }
        g.mapped = g.mapped.saturating_sub(gone);
        // What was cut off, or grown as zeros, reads differently here.
        let (lo, hi) = if size_blocks < g.size_blocks {
            (size_blocks, g.size_blocks)
        } else {
            (g.size_blocks, size_blocks)
        };
        g.mark(lo, hi - lo);
        g.size_blocks = size_blocks;
        Ok(Released(cut))
    }

    /// The first leaf of blocks `lba .. lba + n` that a write cannot go
    /// into as it is, and what it needs: where its directory page is
    /// missing (when `create`) or shared, a page; where there is none
    /// (when `create`; trims need none), a leaf; where it is shared, a leaf or
    /// delta of its own; where a delta lacks room, a leaf. Trims need
    /// them too where they cover a leaf whole: they are packed in pieces
    /// that may end inside it.
    pub(crate) fn leaf_wanted(
        &self,
        lba: u64,
        n: u64,
        create: bool,
    ) -> Result<Option<(u64, Want)>> {
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
            let (from, to) = within(i, lba, end);
            let k = slot_index(i).ok_or(EINVAL)?;
            if g.leaves.wants_page(k, create) {
                return Ok(Some((i, Want::Page)));
            }
            let want = match g.leaves.get(k) {
                None if create && g.leaves.writable(k) => Some(Want::Leaf),
                Some(LeafRef::Full(l)) if l.shared() => {
                    let fits = (to - from) as usize <= DELTA_ENTRIES;
                    Some(if g.form == Form::Changed && fits {
                        Want::Delta(l.clone())
                    } else {
                        Want::Leaf
                    })
                }
                Some(LeafRef::Delta(d)) => {
                    let need = d.unchanged_in(from, to);
                    if d.shared() {
                        let fits = d.len() + need <= DELTA_ENTRIES;
                        Some(if g.form == Form::Changed && fits {
                            Want::Delta(d.base.clone())
                        } else {
                            Want::Leaf
                        })
                    } else if need > d.room() {
                        Some(Want::Leaf)
                    } else {
                        None
                    }
                }
                _ => None,
            };
            if let Some(w) = want {
                return Ok(Some((i, w)));
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
            self.lock().install(i, leaf, |_, _| {})
        })
    }

    /// Allocates with `flags` what [`Self::leaf_wanted`] names for every
    /// leaf of blocks `lba .. lba + n` and hands it to `put` with its
    /// index, which should [`Locked::install`] it; then keeps room in the
    /// deltas for the write.
    pub(crate) fn prepare_each(
        &self,
        lba: u64,
        n: u64,
        create: bool,
        flags: kernel::alloc::Flags,
        mut put: impl FnMut(u64, NewLeaf),
    ) -> Result {
        let end = lba.checked_add(n).ok_or(EINVAL)?;
        loop {
            let mut from = lba;
            while let Some((i, want)) = self.leaf_wanted(from, end.saturating_sub(from), create)? {
                // The leaf a page is for may want something next.
                let next = if matches!(want, Want::Page) { i } else { i + 1 };
                put(i, NewLeaf::of(want, flags)?);
                from = from.max(next * LEAF_ENTRIES);
            }
            // Another write may have taken the room meanwhile: then its
            // delta becomes a leaf on the next round.
            if self.lock().reserve(lba, n) {
                return Ok(());
            }
        }
    }

    /// Takes the map's lock.
    #[track_caller]
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked(self.inner.lock())
    }

    /// Lets go of every leaf, as when the volume is deleted; entries no
    /// other map points at go to `dropped`. Call with the writer's state
    /// lock held; drop what it returns after letting go of that lock.
    pub(crate) fn release_all(&self, mut dropped: impl FnMut(Entry)) -> Result<Released> {
        let mut d = self.detach_all();
        while !d.release_step(&mut dropped) {}
        Ok(d.released())
    }

    /// Empties the map, as when the volume is deleted, and hands its leaves
    /// over to be released a step at a time (with the writer's state lock
    /// held for each step, as for [`Self::release_all`]).
    pub(crate) fn detach_all(&self) -> Detached {
        let mut g = self.inner.lock();
        let pages = g.leaves.detach();
        for m in g.marks.iter() {
            m.forget();
        }
        g.marks.clear();
        if let Some(t) = g.track.take() {
            t.kill();
        }
        g.mapped = 0;
        g.nr_leaves = 0;
        g.nr_deltas = 0;
        g.size_blocks = 0;
        Detached(pages)
    }

    /// The longest hold of the map's lock so far, in microseconds, and
    /// where it was taken.
    pub(crate) fn longest_hold(&self) -> (u64, Option<crate::timed::Site>) {
        self.inner.longest()
    }

    /// Forgets the holds so far (those of the scan at assembly).
    pub(crate) fn reset_longest_hold(&self) {
        self.inner.reset()
    }

    /// Memory use.
    pub(crate) fn stats(&self) -> MapStats {
        let g = self.inner.lock();
        let (own, shared) = g.leaves.pages();
        let page = (PAGE_SLOTS * core::mem::size_of::<Option<LeafRef>>()) as u64;
        let dir = g.leaves.top_bytes() + (own + shared).saturating_mul(page);
        let delta = core::mem::size_of::<Delta>() as u64;
        let mut st = MapStats {
            mapped: g.mapped,
            leaf_bytes: g.nr_leaves.saturating_mul(LEAF_ENTRIES * 8),
            delta_bytes: g.nr_deltas.saturating_mul(delta),
            deltas: g.nr_deltas,
            dir_bytes: dir,
            shared_pages: shared,
            shared_bytes: shared.saturating_mul(page),
        };
        g.leaves.each(g.leaves.len(), |_, s, in_shared| match s {
            LeafRef::Full(l) if in_shared || l.shared() => st.shared_bytes += LEAF_ENTRIES * 8,
            LeafRef::Delta(d) if in_shared || d.shared() => st.shared_bytes += delta,
            _ => {}
        });
        st
    }
}

/// The map, locked.
pub(crate) struct Locked<'a>(TimedGuard<'a, Inner>);

// A failed assertion is the test failing; the tables under test are built
// here, not read from a member.
#[allow(clippy::indexing_slicing, clippy::panic)]
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
        // A pointer to the one page the directory may have, not a slot
        // per leaf.
        assert!(empty.dir_bytes > 0 && empty.dir_bytes <= 16);
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
        let page = (PAGE_SLOTS * core::mem::size_of::<Option<LeafRef>>()) as u64;
        assert_eq!(st.dir_bytes, empty.dir_bytes + page);
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
        // Unmapping runs over leaves that were never made, not past the end.
        m.unmap(0, LEAF_ENTRIES, |_| {})?;
        assert_eq!(m.unmap(1, LEAF_ENTRIES, |_| {}).err(), Some(EINVAL));
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
        copy.share_from(&src, Form::Full, None)?;
        let st = copy.stats();
        assert_eq!(st.mapped, 2);
        let page = (PAGE_SLOTS * core::mem::size_of::<Option<LeafRef>>()) as u64;
        assert_eq!(st.shared_bytes, 2 * LEAF_ENTRIES * 8 + page);
        assert_eq!(copy.unique_among(&[&src])?, 0);
        // Neither side writes into a shared leaf without copying it.
        assert_eq!(src.lock().set(3, disk(101)).err(), Some(ENOMEM));
        assert_eq!(src.lock().unmap(0, 10, |_| {}).err(), Some(ENOMEM));
        let wanted = |lba, create| -> Result<Option<u64>> {
            Ok(src.leaf_wanted(lba, 1, create)?.map(|(i, _)| i))
        };
        assert_eq!(wanted(0, true)?, Some(0));
        assert_eq!(wanted(2 * LEAF_ENTRIES, false)?, None);
        assert_eq!(wanted(2 * LEAF_ENTRIES, true)?, Some(2));
        // The directory page first: no entry changes hands.
        assert!(matches!(
            src.leaf_wanted(0, 1, true)?,
            Some((0, Want::Page))
        ));
        let mut moved = 0;
        let page = NewLeaf::of(Want::Page, GFP_KERNEL)?;
        src.lock().install(0, page, |_, _| moved += 1);
        assert_eq!(moved, 0);
        assert!(matches!(
            src.leaf_wanted(0, 1, true)?,
            Some((0, Want::Leaf))
        ));
        // Copying the leaf sees every entry once more.
        let mut added = 0;
        let leaf = NewLeaf::new(GFP_KERNEL)?;
        src.lock()
            .install(0, leaf, |c, _| added += i32::from(c == Change::Added));
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
        assert_eq!(copy.stats().shared_bytes, 0);
        assert_eq!(copy.lock().get(LEAF_ENTRIES + 1), disk(300));
        // Its page, now read by it alone, is still one it shared: a write
        // copies it once more.
        assert_eq!(copy.lock().set(3, disk(5)).err(), Some(ENOMEM));
        copy.prepare(3, 1, GFP_KERNEL)?;
        assert_eq!(copy.stats().shared_pages, 0);
        assert_eq!(copy.lock().set(3, disk(5))?, disk(100));
        Ok(())
    }

    fn disk(b: u64) -> Entry {
        Entry::Disk {
            member: 0,
            block: b,
        }
    }

    #[test]
    fn release_in_steps() -> Result {
        // Three full leaves; a copy shares the directory page.
        let src = KBox::pin_init(Map::new(3 * LEAF_ENTRIES)?, GFP_KERNEL)?;
        src.prepare(0, 3 * LEAF_ENTRIES, GFP_KERNEL)?;
        {
            let mut m = src.lock();
            for lba in 0..3 * LEAF_ENTRIES {
                m.set(lba, disk(lba + 1))?;
            }
        }
        let copy = KBox::pin_init(Map::new(3 * LEAF_ENTRIES)?, GFP_KERNEL)?;
        copy.share_from(&src, Form::Full, None)?;
        // The source goes first, one slot at a time: the copy still reads
        // the page, so nothing is dropped, and the source is empty at once.
        let mut d = src.detach_all();
        assert_eq!(src.stats().mapped, 0);
        let mut dropped = 0u64;
        while !d.0.release_step(1, &mut |_| dropped += 1) {}
        assert_eq!(dropped, 0);
        assert_eq!(copy.lock().get(LEAF_ENTRIES + 7), disk(LEAF_ENTRIES + 8));
        drop(d.released());
        // The copy, last to hold it, drops every entry, a leaf per step.
        let mut d = copy.detach_all();
        let mut leaves = 0;
        while !d.0.release_step(dir::LEAF_COST, &mut |_| dropped += 1) {
            leaves += 1;
        }
        assert_eq!(dropped, 3 * LEAF_ENTRIES);
        assert_eq!(leaves, 3);
        drop(d.released());
        Ok(())
    }

    #[test]
    fn unique_blocks_are_exact() -> Result {
        let src = KBox::pin_init(Map::new(2 * LEAF_ENTRIES)?, GFP_KERNEL)?;
        src.prepare(0, 2 * LEAF_ENTRIES, GFP_KERNEL)?;
        for b in 0..4 {
            src.lock().set(b, disk(b + 1))?;
        }
        src.lock().set(LEAF_ENTRIES, disk(9))?;
        let copy = KBox::pin_init(Map::new(2 * LEAF_ENTRIES)?, GFP_KERNEL)?;
        copy.share_from(&src, Form::Full, None)?;
        assert_eq!(src.unique_among(&[&copy])?, 0);
        // The source's own copy of the leaf still points at three blocks
        // the copy reads: they are not its alone.
        src.prepare(0, 1, GFP_KERNEL)?;
        src.lock().set(0, disk(20))?;
        assert_eq!(src.unique_among(&[&copy])?, 1);
        assert_eq!(copy.unique_among(&[&src])?, 1);
        // A delta's unchanged entries are its base's.
        let deep = KBox::pin_init(Map::new(2 * LEAF_ENTRIES)?, GFP_KERNEL)?;
        deep.share_from(&copy, Form::Changed, None)?;
        deep.prepare(1, 1, GFP_KERNEL)?;
        assert_eq!(deep.stats().deltas, 1);
        deep.lock().set(1, disk(30))?;
        assert_eq!(src.unique_among(&[&copy, &deep])?, 1);
        assert_eq!(copy.unique_among(&[&src, &deep])?, 0);
        assert_eq!(deep.unique_among(&[&src, &copy])?, 1);
        assert_eq!(deep.unique_among(&[])?, 5);
        // Where two of them differ, as a bit map.
        let n = 2 * LEAF_ENTRIES;
        let mut bits = KVec::from_elem(0u8, (n / 8) as usize, GFP_KERNEL)?;
        assert_eq!(src.diff(&copy, 0, n, &mut bits)?, 1);
        assert_eq!(bits.first(), Some(&0b01));
        bits.fill(0);
        assert_eq!(src.diff(&deep, 0, n, &mut bits)?, 2);
        assert_eq!(bits.first(), Some(&0b11));
        assert!(bits.iter().skip(1).all(|&b| b == 0));
        bits.fill(0);
        assert_eq!(deep.diff(&copy, 1, 3, &mut bits)?, 1);
        assert_eq!(bits.first(), Some(&0b01));
        assert_eq!(copy.diff(&copy, 0, n, &mut bits)?, 0);
        // Past the end, or more than the bit map holds: refused.
        assert_eq!(src.diff(&copy, 1, n, &mut bits).err(), Some(EINVAL));
        assert_eq!(src.diff(&copy, 0, n, &mut bits[..3]).err(), Some(EINVAL));
        Ok(())
    }

    #[test]
    fn copies_share_directory_pages() -> Result {
        // Three GiB: three directory pages, of which the source writes
        // into the first and the last.
        let gib = PAGE_SLOTS as u64 * LEAF_ENTRIES;
        let size = 3 * gib;
        let far = 2 * gib + 5 * LEAF_ENTRIES;
        let src = KBox::pin_init(Map::new(size)?, GFP_KERNEL)?;
        let top = src.stats().dir_bytes;
        for lba in [1, far] {
            src.prepare(lba, 1, GFP_KERNEL)?;
            src.lock().set(lba, disk(lba))?;
        }
        let page = (PAGE_SLOTS * core::mem::size_of::<Option<LeafRef>>()) as u64;
        assert_eq!(src.stats().dir_bytes, top + 2 * page);
        let copy = KBox::pin_init(Map::new(size)?, GFP_KERNEL)?;
        copy.share_from(&src, Form::Full, None)?;
        assert_eq!(
            (src.stats().shared_pages, copy.stats().shared_pages),
            (2, 2)
        );
        // A shared page is changed by nobody: the first write wants a
        // page of its own, then a leaf.
        assert_eq!(src.lock().set(1, disk(9)).err(), Some(ENOMEM));
        assert!(matches!(
            src.leaf_wanted(1, 1, true)?,
            Some((0, Want::Page))
        ));
        assert!(src.leaf_wanted(gib, 1, false)?.is_none());
        assert!(matches!(
            src.leaf_wanted(gib, 1, true)?,
            Some((_, Want::Page))
        ));
        src.prepare(1, 1, GFP_KERNEL)?;
        assert_eq!(src.stats().shared_pages, 1);
        assert_eq!(copy.stats().shared_pages, 1);
        // Its copy of the leaf was one more reference to the old block.
        assert_eq!(src.lock().set(1, disk(10))?, disk(1));
        assert_eq!(copy.lock().get(1), disk(1));
        assert_eq!(src.lock().get(1), disk(10));
        // Copies of copies share the same pages, and lose nothing when
        // those before them go.
        let deep = KBox::pin_init(Map::new(size)?, GFP_KERNEL)?;
        deep.share_from(&copy, Form::Changed, None)?;
        // Nothing is allocated under the map's lock: count what goes.
        let (mut gone, mut last) = (0, Entry::Unmapped);
        drop(src.release_all(|e| {
            gone += 1;
            last = e;
        })?);
        assert_eq!((gone, last), (1, disk(10)));
        drop(copy.release_all(|e| {
            gone += 1;
            last = e;
        })?);
        assert_eq!(gone, 1);
        assert_eq!(deep.lock().get(1), disk(1));
        assert_eq!(deep.lock().get(far), disk(far));
        // Cut inside a shared page and grown again: what was past the
        // end reads as nothing.
        let other = KBox::pin_init(Map::new(size)?, GFP_KERNEL)?;
        other.share_from(&deep, Form::Full, None)?;
        let cut = 2 * gib + LEAF_ENTRIES;
        drop(deep.resize(Directory::new(cut)?, cut, |_| {})?);
        drop(deep.resize(Directory::new(size)?, size, |_| {})?);
        assert_eq!(deep.lock().get(far), Entry::Unmapped);
        assert_eq!(deep.stats().mapped, 1);
        assert_eq!(other.lock().get(far), disk(far));
        let mut seen = 0;
        deep.lock().for_each_mapped(3, |_| seen += 1);
        other.lock().for_each_mapped(3, |_| seen += 1);
        assert_eq!(seen, 2);
        drop(deep.release_all(|e| {
            gone += 1;
            last = e;
        })?);
        assert_eq!(gone, 1);
        drop(other.release_all(|e| {
            gone += 1;
            last = e;
        })?);
        assert_eq!(gone, 3);
        Ok(())
    }

    #[test]
    fn changed_blocks_over_a_frozen_base() -> Result {
        // A delta and the count beside it fit a 512-byte slab object.
        assert!(core::mem::size_of::<Delta>() + 8 <= 512);
        let src = KBox::pin_init(Map::new(2 * LEAF_ENTRIES)?, GFP_KERNEL)?;
        src.prepare(0, 1, GFP_KERNEL)?;
        for b in 0..10 {
            src.lock().set(b, disk(100 + b))?;
        }
        let copy = KBox::pin_init(Map::new(2 * LEAF_ENTRIES)?, GFP_KERNEL)?;
        copy.share_from(&src, Form::Changed, None)?;
        let page = NewLeaf::of(Want::Page, GFP_KERNEL)?;
        copy.lock().install(0, page, |_, _| {});
        assert!(matches!(
            copy.leaf_wanted(3, 1, true)?,
            Some((0, Want::Delta(_)))
        ));
        // More changes than a delta holds: a leaf of its own at once.
        let big = DELTA_ENTRIES as u64 + 1;
        assert!(matches!(
            copy.leaf_wanted(0, big, true)?,
            Some((0, Want::Leaf))
        ));
        copy.prepare(3, 1, GFP_KERNEL)?;
        let st = copy.stats();
        assert_eq!((st.deltas, st.leaf_bytes, st.mapped), (1, 0, 10));
        // The source still reads the old block: nothing is dropped.
        assert_eq!(copy.lock().set(3, disk(500))?, Entry::Unmapped);
        assert_eq!(copy.lock().get(3), disk(500));
        assert_eq!(copy.lock().get(4), disk(104));
        assert_eq!(src.lock().get(3), disk(103));
        // The source took the form too; once both changed an entry, the
        // base's block is read by nobody and goes.
        assert_eq!(src.lock().set(3, disk(600)).err(), Some(ENOMEM));
        src.prepare(3, 1, GFP_KERNEL)?;
        assert_eq!(src.stats().deltas, 1);
        assert_eq!(src.lock().set(3, disk(600))?, disk(103));
        assert_eq!(copy.lock().set(3, disk(501))?, disk(500));
        // A move of what both read shows on both sides.
        assert!(copy.lock().replace(5, disk(105), disk(205)));
        assert_eq!(src.lock().get(5), disk(205));
        assert!(src.lock().replace(3, disk(600), disk(601)));
        assert_eq!(copy.lock().get(3), disk(501));
        let mut seen = 0;
        src.lock().for_each_mapped(9, |_| seen += 1);
        copy.lock().for_each_mapped(9, |_| seen += 1);
        // Nine base entries, one change on each side.
        assert_eq!(seen, 11);
        // Filling the delta turns it into a leaf with the same content.
        for b in 0..big {
            copy.prepare(LEAF_ENTRIES - 1 - b, 1, GFP_KERNEL)?;
            copy.lock().set(LEAF_ENTRIES - 1 - b, disk(1000 + b))?;
        }
        let st = copy.stats();
        assert_eq!((st.deltas, st.leaf_bytes), (0, LEAF_ENTRIES * 8));
        assert_eq!(copy.lock().get(3), disk(501));
        assert_eq!(copy.lock().get(4), disk(104));
        assert_eq!(copy.lock().get(LEAF_ENTRIES - 1), disk(1000));
        assert_eq!(src.lock().get(4), disk(104));
        Ok(())
    }

    #[test]
    fn trims_in_pieces_over_shared_leaves() -> Result {
        for form in [Form::Full, Form::Changed] {
            let src = KBox::pin_init(Map::new(3 * LEAF_ENTRIES)?, GFP_KERNEL)?;
            src.prepare(0, 3 * LEAF_ENTRIES, GFP_KERNEL)?;
            for b in 0..3 * LEAF_ENTRIES {
                src.lock().set(b, disk(b + 1))?;
            }
            let copy = KBox::pin_init(Map::new(3 * LEAF_ENTRIES)?, GFP_KERNEL)?;
            copy.share_from(&src, form, None)?;
            // One trim of two leaves, prepared once and packed in two
            // pieces that split the first leaf.
            src.prepare_with(0, 2 * LEAF_ENTRIES, false, GFP_KERNEL)?;
            let mut gone = 0;
            src.lock().unmap(0, 100, |_| gone += 1)?;
            src.lock()
                .unmap(100, 2 * LEAF_ENTRIES - 100, |_| gone += 1)?;
            // The trimming side had its own copies of both leaves made
            // (their blocks counted once more) and let go of them.
            assert_eq!(gone, 2 * LEAF_ENTRIES);
            assert_eq!(src.lock().get(5), Entry::Unmapped);
            assert_eq!(src.lock().get(2 * LEAF_ENTRIES), disk(2 * LEAF_ENTRIES + 1));
            assert_eq!(copy.lock().get(5), disk(6));
            assert_eq!(src.stats().mapped, LEAF_ENTRIES);
        }
        Ok(())
    }

    /// References to each block as the maps' callers count them.
    struct Refs(KVec<i32>);

    impl Refs {
        fn add(&mut self, e: Entry, n: i32) {
            if let Entry::Disk { block, .. } = e {
                if let Some(r) = self.0.get_mut(block as usize) {
                    *r += n;
                }
            }
        }
    }

    #[test]
    fn every_reference_counts_once() -> Result {
        const SIZE: u64 = 3 * LEAF_ENTRIES;
        const MAPS: usize = 4;
        const BLOCKS: usize = 4096;
        let mut maps = KVec::new();
        for _ in 0..MAPS {
            maps.push(KBox::pin_init(Map::new(SIZE)?, GFP_KERNEL)?, GFP_KERNEL)?;
        }
        // What each map should read, and who is served.
        let mut want = KVec::new();
        for _ in 0..MAPS as u64 * SIZE {
            want.push(0u64, GFP_KERNEL)?;
        }
        let mut live = [true, false, false, false];
        let mut refs = Refs(KVec::new());
        for _ in 0..BLOCKS {
            refs.0.push(0, GFP_KERNEL)?;
        }
        let mut next = 1u64;
        let mut deltas = 0;
        // Each copy's divergence map, with the copy and its source.
        let mut tracked = KVec::new();
        let mut diverged = 0;
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut roll = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for step in 1..1500u64 {
            let m = roll(MAPS as u64) as usize;
            let (Some(map), true) = (maps.get(m), live.get(m).copied().unwrap_or(false)) else {
                // Not served yet: make it a copy of a served one.
                let from = (0..MAPS).find(|&k| live.get(k) == Some(&true)).unwrap_or(0);
                let (Some(map), Some(src)) = (maps.get(m), maps.get(from)) else {
                    continue;
                };
                let form = if roll(2) == 0 {
                    Form::Changed
                } else {
                    Form::Full
                };
                let dform = match roll(3) {
                    0 => diverge::Form::Bitmap,
                    1 => diverge::Form::Multi,
                    _ => diverge::Form::Partial,
                };
                // Copies of a source that has not changed since the last
                // one read its record too.
                let shared = src.shareable(from as u32 + 1, SIZE, dform);
                let d = Divergence::new(m as u32 + 1, from as u32 + 1, SIZE, dform, shared)?;
                src.reserve_track()?;
                map.share_from(src, form, Some(&d))
                    .inspect_err(|_| pr_err!("step {}: share\n", step))?;
                tracked.push((m, from, d), GFP_KERNEL)?;
                for lba in 0..SIZE {
                    let v = want
                        .get((from as u64 * SIZE + lba) as usize)
                        .copied()
                        .unwrap_or(0);
                    if let Some(w) = want.get_mut((m as u64 * SIZE + lba) as usize) {
                        *w = v;
                    }
                }
                if let Some(l) = live.get_mut(m) {
                    *l = true;
                }
                continue;
            };
            let lba = roll(SIZE);
            let kind = roll(20);
            if kind == 0 && step % 3 == 0 {
                // Delete, then serve again as a copy later.
                drop(map.release_all(|e| refs.add(e, -1))?);
                drop(map.resize(Directory::new(SIZE)?, SIZE, |_| {})?);
                if let Some(l) = live.get_mut(m) {
                    *l = false;
                }
                continue;
            }
            if kind < 3 {
                // A trim, of a leaf whole now and then.
                let (from, n) = if kind == 0 {
                    (lba / LEAF_ENTRIES * LEAF_ENTRIES, LEAF_ENTRIES)
                } else {
                    (lba, roll(8).min(SIZE - lba))
                };
                map.prepare_each(from, n, false, GFP_KERNEL, |i, leaf| {
                    map.lock().install(i, leaf, |c, e| {
                        refs.add(e, if c == Change::Added { 1 } else { -1 })
                    })
                })?;
                map.lock()
                    .unmap(from, n, |e| refs.add(e, -1))
                    .inspect_err(|_| pr_err!("step {}: unmap {} {}\n", step, from, n))?;
                for b in from..from + n {
                    if let Some(w) = want.get_mut((m as u64 * SIZE + b) as usize) {
                        *w = 0;
                    }
                }
            } else {
                let n = roll(4).min(SIZE - lba).max(1);
                map.prepare_each(lba, n, true, GFP_KERNEL, |i, leaf| {
                    map.lock().install(i, leaf, |c, e| {
                        refs.add(e, if c == Change::Added { 1 } else { -1 })
                    })
                })?;
                for b in lba..lba + n {
                    if next as usize >= BLOCKS {
                        break;
                    }
                    refs.add(disk(next), 1);
                    let gone = map
                        .lock()
                        .set(b, disk(next))
                        .inspect_err(|_| pr_err!("step {}: set {}\n", step, b))?;
                    refs.add(gone, -1);
                    if let Some(w) = want.get_mut((m as u64 * SIZE + b) as usize) {
                        *w = next;
                    }
                    next += 1;
                }
            }
            // Every map reads what it should, and every block has as many
            // references as there are leaves and deltas pointing at it.
            let mut counted = Refs(KVec::new());
            for _ in 0..BLOCKS {
                counted.0.push(0, GFP_KERNEL)?;
            }
            for (k, map) in maps.iter().enumerate() {
                if live.get(k) != Some(&true) {
                    continue;
                }
                let mut g = map.lock();
                for b in 0..SIZE {
                    let w = want
                        .get((k as u64 * SIZE + b) as usize)
                        .copied()
                        .unwrap_or(0);
                    let e = if w == 0 { Entry::Unmapped } else { disk(w) };
                    assert_eq!(g.get(b), e);
                }
                g.for_each_mapped(step, |e| counted.add(e, 1));
            }
            assert!(refs.0.iter().all(|&r| r >= 0));
            assert!(refs.0 == counted.0);
            // A diff guided by the divergence map is the diff of the maps.
            for (c, from, d) in tracked.iter() {
                let (Some(a), Some(b)) = (maps.get(*c), maps.get(*from)) else {
                    continue;
                };
                if !d.live() {
                    continue;
                }
                let mut by_maps = [0u8; (SIZE / 8) as usize];
                let mut by_marks = [0u8; (SIZE / 8) as usize];
                let x = a.diff(b, 0, SIZE, &mut by_maps)?;
                let y = a.diff_by(b, d, 0, SIZE, &mut by_marks)?;
                if x != y || by_maps != by_marks {
                    pr_err!(
                        "step {}: copy {} of {}: {} against {}\n",
                        step,
                        c,
                        from,
                        x,
                        y
                    );
                }
                assert!(x == y && by_maps == by_marks);
                diverged = diverged.max(x);
            }
            for map in maps.iter() {
                deltas = deltas.max(map.stats().deltas);
            }
        }
        // The run went through deltas, not only whole leaves, and copies
        // that differ.
        assert!(deltas > 0);
        assert!(diverged > 0);
        for map in maps.iter() {
            drop(map.release_all(|e| refs.add(e, -1))?);
        }
        assert!(refs.0.iter().all(|&r| r == 0));
        Ok(())
    }
}
