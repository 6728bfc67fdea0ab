// SPDX-License-Identifier: GPL-2.0

//! What a map's directory points at: leaves, shared by the maps of instant
//! copies until one of them writes into them, and deltas, the pointers of
//! the blocks a map changed over a shared leaf (the changed-blocks copy
//! metadata form; see `Documentation/stria-copy.rst`).

use super::dir::Page;
use super::Entry;
use super::LEAF_ENTRIES;
use kernel::prelude::*;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;
use kernel::sync::UniqueArc;

/// Bits of a leaf entry that [`Entry::encode`] never sets: in a leaf that
/// deltas read, they count the deltas that changed the entry.
const OVER_SHIFT: u32 = 54;
pub(super) const OVER_MASK: u64 = 0xff << OVER_SHIFT;

/// Changed entries a delta holds. With its bit map and counters a delta
/// then fits a 512-byte slab object, an eighth of a leaf; one more write
/// and its leaf is copied whole.
pub(crate) const DELTA_ENTRIES: usize = 48;

/// A page of entries, shared by the maps of instant copies until one of
/// them writes into it.
///
/// # Invariants
///
/// `entries`, `holders` and `deltas` change only with the writer's state
/// lock held, or before the array serves I/O: so a leaf is never copied
/// while an entry of it moves. They are atomics so that reads need no more
/// than the map's own lock. An entry's [`OVER_MASK`] bits count the deltas
/// over the leaf that changed it; an entry they all changed and that no
/// holder reads any more is cleared, so that each mapped entry is one
/// reference to its block.
pub(crate) struct Leaf {
    /// Directories that point at it whole.
    pub(super) holders: Atomic<u32>,
    /// Deltas that read it as their base.
    pub(super) deltas: Atomic<u32>,
    /// Entries mapped.
    pub(super) count: Atomic<u32>,
    /// Pass of the last [`Locked::for_each_mapped`] that counted it.
    pub(super) seen: Atomic<u64>,
    /// Exactly a page, allocated apart: with the counters beside it, a
    /// leaf would take a slab object of twice that.
    pub(super) entries: KBox<[Atomic<u64>; LEAF_ENTRIES as usize]>,
}

impl Leaf {
    pub(super) fn raw(&self, i: u64) -> u64 {
        self.entries.get(i as usize).map_or(0, |e| e.load(Relaxed))
    }

    pub(super) fn get(&self, i: u64) -> u64 {
        self.raw(i) & !OVER_MASK
    }

    pub(super) fn put(&self, i: u64, v: u64) {
        if let Some(e) = self.entries.get(i as usize) {
            e.store((e.load(Relaxed) & OVER_MASK) | (v & !OVER_MASK), Relaxed);
        }
    }

    pub(super) fn over(&self, i: u64) -> u32 {
        ((self.raw(i) & OVER_MASK) >> OVER_SHIFT) as u32
    }

    pub(super) fn set_over(&self, i: u64, n: u32) {
        if let Some(e) = self.entries.get(i as usize) {
            let n = u64::from(n.min(0xff)) << OVER_SHIFT;
            e.store((e.load(Relaxed) & !OVER_MASK) | n, Relaxed);
        }
    }

    /// Directories and deltas reading it.
    pub(super) fn nodes(&self) -> u32 {
        self.holders.load(Relaxed) + self.deltas.load(Relaxed)
    }

    pub(super) fn shared(&self) -> bool {
        self.nodes() > 1
    }

    pub(super) fn mapped(&self) -> u64 {
        u64::from(self.count.load(Relaxed))
    }

    /// Clears, after a reader went away, the entries no reader still
    /// reads; `dropped` sees each. With no reader left, that is all.
    pub(super) fn reap(&self, dropped: &mut impl FnMut(Entry)) {
        let nodes = self.nodes();
        for i in 0..LEAF_ENTRIES {
            let v = self.get(i);
            if v != 0 && self.over(i) == nodes {
                self.put(i, 0);
                self.count.fetch_sub(1, Relaxed);
                dropped(Entry::decode(v));
            }
        }
    }
}

/// Pointers for the blocks of one leaf that a map changed since it began
/// to share it: the shared leaf is their frozen base.
///
/// # Invariants
///
/// Changes only under the writer's state lock, like [`Leaf`]; with more
/// than one holder only in place ([`Locked::replace`]). `ptrs[..len]` are
/// the changed entries in the order of their bits in `bits`; `view`
/// counts the mapped entries the map reads through it, `own` the mapped
/// ones among `ptrs`.
pub(crate) struct Delta {
    /// Directories that point at it.
    pub(super) holders: Atomic<u32>,
    /// Pass of the last [`Locked::for_each_mapped`] that counted it.
    pub(super) seen: Atomic<u64>,
    pub(super) view: Atomic<u32>,
    pub(super) own: Atomic<u32>,
    pub(super) len: Atomic<u32>,
    /// Changes that prepared writes will make ([`Locked::reserve`]).
    pub(super) reserved: Atomic<u32>,
    pub(super) base: Arc<Leaf>,
    pub(super) bits: [Atomic<u64>; (LEAF_ENTRIES / 64) as usize],
    pub(super) ptrs: [Atomic<u64>; DELTA_ENTRIES],
}

impl Delta {
    pub(super) fn new(base: Arc<Leaf>) -> Self {
        Delta {
            holders: Atomic::new(1),
            seen: Atomic::new(0),
            view: Atomic::new(0),
            own: Atomic::new(0),
            len: Atomic::new(0),
            reserved: Atomic::new(0),
            base,
            bits: core::array::from_fn(|_| Atomic::new(0)),
            ptrs: core::array::from_fn(|_| Atomic::new(0)),
        }
    }

    pub(super) fn len(&self) -> usize {
        (self.len.load(Relaxed) as usize).min(DELTA_ENTRIES)
    }

    pub(super) fn bit(&self, i: u64) -> bool {
        self.bits
            .get((i / 64) as usize)
            .is_some_and(|w| w.load(Relaxed) & (1 << (i % 64)) != 0)
    }

    /// Changed entries below `i`: where `i`'s pointer is or goes.
    pub(super) fn rank(&self, i: u64) -> usize {
        let mut r = 0;
        for (w, bits) in self.bits.iter().enumerate() {
            let w = w as u64 * 64;
            if w + 64 <= i {
                r += bits.load(Relaxed).count_ones();
            } else {
                if w < i {
                    r += (bits.load(Relaxed) & ((1u64 << (i - w)) - 1)).count_ones();
                }
                break;
            }
        }
        r as usize
    }

    pub(super) fn ptr(&self, r: usize) -> u64 {
        self.ptrs.get(r).map_or(0, |p| p.load(Relaxed))
    }

    pub(super) fn get(&self, i: u64) -> u64 {
        if self.bit(i) {
            self.ptr(self.rank(i))
        } else {
            self.base.get(i)
        }
    }

    pub(super) fn shared(&self) -> bool {
        self.holders.load(Relaxed) > 1
    }

    /// Points entry `i` at `v` in a delta no other directory points at.
    /// Returns what the entry read and what nothing reads any more (0 if
    /// another reader of the base still reads it); `ENOMEM` if the delta
    /// is full.
    pub(super) fn change(&self, i: u64, v: u64) -> Result<(u64, u64)> {
        let r = self.rank(i);
        let (old, dropped) = if self.bit(i) {
            let p = self.ptrs.get(r).ok_or(EINVAL)?;
            let old = p.load(Relaxed);
            p.store(v, Relaxed);
            recount(&self.own, old, v);
            (old, old)
        } else {
            let len = self.len();
            if len >= DELTA_ENTRIES {
                return Err(ENOMEM);
            }
            // Keep the pointers in the order of their bits.
            for k in (r..len).rev() {
                if let (Some(a), Some(b)) = (self.ptrs.get(k), self.ptrs.get(k + 1)) {
                    b.store(a.load(Relaxed), Relaxed);
                }
            }
            if let Some(p) = self.ptrs.get(r) {
                p.store(v, Relaxed);
            }
            if let Some(w) = self.bits.get((i / 64) as usize) {
                w.store(w.load(Relaxed) | (1 << (i % 64)), Relaxed);
            }
            self.len.fetch_add(1, Relaxed);
            recount(&self.own, 0, v);
            let held = self.reserved.load(Relaxed);
            self.reserved.store(held.saturating_sub(1), Relaxed);
            let b = &self.base;
            let old = b.get(i);
            let over = b.over(i) + 1;
            b.set_over(i, over);
            // Every reader of the base changed it: it is dropped.
            if old != 0 && over == b.nodes() {
                b.put(i, 0);
                b.count.fetch_sub(1, Relaxed);
                (old, old)
            } else {
                (old, 0)
            }
        };
        recount(&self.view, old, v);
        Ok((old, dropped))
    }

    /// Entries of `from .. to` (within the leaf) not changed yet.
    pub(super) fn unchanged_in(&self, from: u64, to: u64) -> usize {
        (from..to).filter(|&i| !self.bit(i)).count()
    }

    /// Room for changes not spoken for by prepared writes.
    pub(super) fn room(&self) -> usize {
        DELTA_ENTRIES.saturating_sub(self.len() + self.reserved.load(Relaxed) as usize)
    }

    /// The changed entries, with their leaf indexes.
    pub(super) fn changes(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        (0..LEAF_ENTRIES)
            .filter(|&i| self.bit(i))
            .zip(self.ptrs.iter().take(self.len()))
            .map(|(i, p)| (i, p.load(Relaxed)))
    }
}

/// Counts in `c` an entry that goes from `old` to `new` (0: unmapped).
pub(super) fn recount(c: &Atomic<u32>, old: u64, new: u64) {
    match (old != 0, new != 0) {
        (false, true) => drop(c.fetch_add(1, Relaxed)),
        (true, false) => drop(c.fetch_sub(1, Relaxed)),
        _ => {}
    }
}

/// What a directory slot points at.
pub(super) enum LeafRef {
    /// A leaf of its own or shared whole.
    Full(Arc<Leaf>),
    /// Changes over a shared leaf.
    Delta(Arc<Delta>),
}

impl LeafRef {
    pub(super) fn get(&self, i: u64) -> u64 {
        match self {
            LeafRef::Full(l) => l.get(i),
            LeafRef::Delta(d) => d.get(i),
        }
    }

    /// Mapped entries read through it.
    pub(super) fn mapped(&self) -> u64 {
        match self {
            LeafRef::Full(l) => l.mapped(),
            LeafRef::Delta(d) => u64::from(d.view.load(Relaxed)),
        }
    }

    /// Whether a write may change it as it is (given room in a delta).
    pub(super) fn own(&self) -> bool {
        match self {
            LeafRef::Full(l) => !l.shared(),
            LeafRef::Delta(d) => !d.shared(),
        }
    }

    /// One more directory points at it.
    pub(super) fn share(&self) -> Self {
        match self {
            LeafRef::Full(l) => {
                l.holders.fetch_add(1, Relaxed);
                LeafRef::Full(l.clone())
            }
            LeafRef::Delta(d) => {
                d.holders.fetch_add(1, Relaxed);
                LeafRef::Delta(d.clone())
            }
        }
    }

    /// A directory let go of it: entries nothing reads any more go to
    /// `dropped`.
    pub(super) fn release(&self, dropped: &mut impl FnMut(Entry)) {
        match self {
            LeafRef::Full(l) => {
                l.holders.fetch_sub(1, Relaxed);
                l.reap(dropped);
            }
            LeafRef::Delta(d) => {
                if d.holders.fetch_sub(1, Relaxed) != 1 {
                    return;
                }
                let b = &d.base;
                for (i, v) in d.changes() {
                    if v != 0 {
                        dropped(Entry::decode(v));
                    }
                    b.set_over(i, b.over(i).saturating_sub(1));
                }
                b.deltas.fetch_sub(1, Relaxed);
                b.reap(dropped);
            }
        }
    }
}

/// What a write needs before it can go into a leaf.
pub(crate) enum Want {
    /// A directory page of its own (new, or a copy of a shared one).
    Page,
    /// A leaf of its own (new, or a copy of what it reads).
    Leaf,
    /// A delta over this shared leaf.
    Delta(Arc<Leaf>),
}

/// How a block's references change as [`Locked::install`] puts a leaf in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// One more leaf or delta points at it.
    Added,
    /// Nothing reads it any more.
    Dropped,
}

/// A leaf or delta for [`Locked::install`], allocated beforehand.
pub(crate) struct NewLeaf(pub(super) New);

/// What a [`NewLeaf`] holds.
pub(super) enum New {
    /// A leaf or delta.
    LeafRef(LeafRef),
    /// A directory page.
    Page(UniqueArc<Page>),
}

impl NewLeaf {
    /// Allocates an empty leaf with `flags`.
    pub(crate) fn new(flags: kernel::alloc::Flags) -> Result<Self> {
        let entries = KBox::init(pin_init::init_array_from_fn(|_| Atomic::new(0u64)), flags)?;
        let leaf = Arc::new(
            Leaf {
                holders: Atomic::new(1),
                deltas: Atomic::new(0),
                count: Atomic::new(0),
                seen: Atomic::new(0),
                entries,
            },
            flags,
        )?;
        Ok(NewLeaf(New::LeafRef(LeafRef::Full(leaf))))
    }

    /// Allocates with `flags` what `want` names.
    pub(crate) fn of(want: Want, flags: kernel::alloc::Flags) -> Result<Self> {
        match want {
            Want::Page => Ok(NewLeaf(New::Page(Page::new(flags)?))),
            Want::Leaf => Self::new(flags),
            Want::Delta(base) => Ok(NewLeaf(New::LeafRef(LeafRef::Delta(Arc::new(
                Delta::new(base),
                flags,
            )?)))),
        }
    }
}
