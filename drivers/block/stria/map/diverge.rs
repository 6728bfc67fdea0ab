// SPDX-License-Identifier: GPL-2.0

//! Where a copy and its source may differ since the copy point: the
//! copy's divergence map, in one of three bit-map forms.
//!
//! Every write or trim of either side marks the blocks it changes, so that
//! comparing the two (`stria copy diff`, an incremental backup) looks only
//! where something was marked instead of walking both maps. A map that
//! cannot say (memory was short when an area was first marked) says
//! "anything here may differ" for that area or for the whole volume, and
//! the comparison falls back to the maps there: a mark is a hint of where
//! to look, never the answer, so a lost mark costs time, not a wrong diff.
//!
//! The forms (see `Documentation/stria-copy.rst`):
//! * a full bit map, a bit per block allocated at the copy point: a mark
//!   is one bit, nothing is allocated later;
//! * multi-level bit maps: a pointer per GiB, a page of pointers per GiB
//!   marked, a 64-byte bit map per 2 MiB area marked;
//! * partial-area bit maps: a table of extent definitions, each an area
//!   and a pointer to its bit map, for copies that change few areas; when
//!   the table is full it becomes multi-level.

use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;
use kernel::sync::SpinLock;

/// Blocks of an area: a map leaf's worth, 2 MiB.
pub(crate) const AREA_BLOCKS: u64 = 512;
const AREA_WORDS: usize = (AREA_BLOCKS / 64) as usize;
/// Areas of a group of the multi-level form: 1 GiB.
const GROUP_AREAS: usize = 512;
const GROUP_BLOCKS: u64 = AREA_BLOCKS * GROUP_AREAS as u64;
/// Words of a page of the full bit map, which covers 128 MiB.
const CHUNK_WORDS: usize = 512;
const CHUNK_BLOCKS: u64 = CHUNK_WORDS as u64 * 64;
/// Extent definitions of the partial-area form: with their bit maps, 62
/// areas cost about what the full bit map of 256 MiB does.
pub(crate) const PARTIAL_AREAS: usize = 62;
/// Largest volume a full bit map is made for: 64 GiB, 2 MiB of bits.
pub(crate) const BITMAP_MAX_BLOCKS: u64 = 16 << 20;
/// Largest volume the multi-level form is made for: 64 TiB, whose top
/// level is 512 KiB.
pub(crate) const MULTI_MAX_BLOCKS: u64 = 16 << 30;
/// Largest volume the driver gives a full bit map of its own accord:
/// 1 GiB, 32 KiB of bits, as much as the multi-level form takes when
/// every area is marked.
pub(crate) const BITMAP_AUTO_BLOCKS: u64 = 1 << 18;

/// The bits of an area: bit `i % 64` of word `i / 64` for its block `i`.
pub(crate) type Area = [u64; AREA_WORDS];

/// How a divergence map is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// A bit per block of the volume.
    Bitmap,
    /// Bit maps per area under two levels of pointers.
    Multi,
    /// Extent definitions pointing at the bit maps of the areas marked.
    Partial,
}

impl Form {
    /// The form the driver picks for a copy of `blocks` blocks whose
    /// source has leaves in `areas` areas: a small volume gets the flat
    /// bit map; a large one whose source was written in few areas (later
    /// writes tend to fall where the data is) the partial-area table;
    /// others the multi-level form.
    pub(crate) fn auto(blocks: u64, areas: u64) -> Self {
        if blocks <= BITMAP_AUTO_BLOCKS {
            Form::Bitmap
        } else if areas <= PARTIAL_AREAS as u64 || blocks > MULTI_MAX_BLOCKS {
            Form::Partial
        } else {
            Form::Multi
        }
    }
}

/// What a divergence map knows of one area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AreaState {
    /// Neither side changed it.
    Clean,
    /// The blocks either side changed.
    Bits(Area),
    /// Any block of it may have changed.
    All,
}

type Group = [Option<KBox<Area>>; GROUP_AREAS];

/// A page of the full bit map.
type Chunk = [Atomic<u64>; CHUNK_WORDS];

enum Repr {
    /// The bits are [`Divergence::flat`], which marks need no lock for.
    Bitmap,
    Multi {
        /// A group per GiB, where marked.
        groups: KVec<Option<KBox<Group>>>,
        /// A bit per GiB that may have changed anywhere.
        all: KVec<u64>,
    },
    /// Sorted by area, at most [`PARTIAL_AREAS`].
    Partial(KVec<(u64, KBox<Area>)>),
    /// Anything may have changed.
    Lost,
}

struct Inner {
    repr: Repr,
    /// Blocks it covers: those of the copy at its point. Beyond, either
    /// side may have grown: anything may differ there.
    blocks: u64,
    /// Blocks marked, with those of areas that may have changed anywhere.
    marked: u64,
    /// Memory it takes.
    bytes: u64,
}

/// What marking an area came to.
enum Step {
    /// Bits newly set, bytes allocated.
    Done(u64, u64),
    /// GiB `.0` of the multi-level form could not get its bit maps.
    GiveUp(usize, u64),
    /// The partial-area table could not get a bit map.
    Lose,
    /// The partial-area table is full.
    Full,
}

/// The divergence map of a copy and its source, which both mark.
#[pin_data]
pub(crate) struct Divergence {
    /// The copy's volume id.
    pub(crate) copy: u32,
    /// Its source's.
    pub(crate) source: u32,
    /// Non-zero once either side is gone: nobody marks it any more.
    dead: Atomic<u32>,
    /// The full bit map form's bits, a page per 128 MiB, empty in the
    /// other forms: a mark is a compare-and-exchange, with no lock.
    flat: KVec<KBox<Chunk>>,
    /// Bits set in `flat`.
    flat_marked: Atomic<u64>,
    #[pin]
    inner: SpinLock<Inner>,
}

/// What a divergence map reports of itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Its form now, `None` once it lost track.
    pub(crate) form: Option<Form>,
    /// Bytes of memory.
    pub(crate) bytes: u64,
    /// Blocks marked.
    pub(crate) marked: u64,
}

fn words_of(a: &Area) -> u64 {
    a.iter().map(|w| u64::from(w.count_ones())).sum()
}

fn area_box(flags: kernel::alloc::Flags) -> Result<KBox<Area>> {
    KBox::init(pin_init::zeroed::<Area>(), flags).map_err(|_| ENOMEM)
}

fn group_box(flags: kernel::alloc::Flags) -> Result<KBox<Group>> {
    KBox::init(pin_init::init_array_from_fn(|_| None), flags)
}

/// Sets bits `from .. to` (below [`AREA_BLOCKS`]) of `a`; returns how
/// many were clear.
fn set_bits(a: &mut [u64], from: u64, to: u64) -> u64 {
    let mut new = 0;
    let mut b = from;
    while b < to {
        let w = (b / 64) as usize;
        let lo = b % 64;
        let hi = (to - (b - lo)).min(64);
        let mask = if hi - lo == 64 {
            u64::MAX
        } else {
            ((1u64 << (hi - lo)) - 1) << lo
        };
        if let Some(word) = a.get_mut(w) {
            new += u64::from((mask & !*word).count_ones());
            *word |= mask;
        }
        b = b - lo + hi;
    }
    new
}

const AREA_BYTES: u64 = core::mem::size_of::<Area>() as u64;
const GROUP_BYTES: u64 = core::mem::size_of::<Group>() as u64;
const EXTENT_BYTES: u64 = core::mem::size_of::<(u64, KBox<Area>)>() as u64;

impl Inner {
    fn lose(&mut self) {
        self.repr = Repr::Lost;
        self.marked = self.blocks;
        self.bytes = 0;
    }

    /// Marks blocks `from .. to` of area `a`, allocating with `flags`.
    fn mark_area(&mut self, a: u64, from: u64, to: u64, flags: kernel::alloc::Flags) {
        match self.try_mark(a, from, to, flags) {
            Step::Done(new, grew) => {
                self.bytes += grew;
                self.marked = self.marked.saturating_add(new);
            }
            Step::GiveUp(g, grew) => {
                self.bytes += grew;
                self.give_up_group(g);
            }
            Step::Lose => self.lose(),
            Step::Full => {
                self.go_multi(flags);
                if matches!(self.repr, Repr::Multi { .. }) {
                    self.mark_area(a, from, to, flags);
                }
            }
        }
    }

    fn try_mark(&mut self, a: u64, from: u64, to: u64, flags: kernel::alloc::Flags) -> Step {
        match &mut self.repr {
            Repr::Lost => Step::Done(0, 0),
            // Marked without the lock.
            Repr::Bitmap => Step::Done(0, 0),
            Repr::Multi { groups, all } => {
                let g = (a / GROUP_AREAS as u64) as usize;
                if all.get(g / 64).is_some_and(|w| w & (1 << (g % 64)) != 0) {
                    return Step::Done(0, 0);
                }
                let Some(slot) = groups.get_mut(g) else {
                    return Step::Done(0, 0);
                };
                let mut grew = 0;
                if slot.is_none() {
                    let Ok(b) = group_box(flags) else {
                        return Step::GiveUp(g, 0);
                    };
                    *slot = Some(b);
                    grew += GROUP_BYTES;
                }
                let k = (a % GROUP_AREAS as u64) as usize;
                let Some(area) = slot.as_mut().and_then(|s| s.get_mut(k)) else {
                    return Step::Done(0, grew);
                };
                if area.is_none() {
                    let Ok(b) = area_box(flags) else {
                        return Step::GiveUp(g, grew);
                    };
                    *area = Some(b);
                    grew += AREA_BYTES;
                }
                Step::Done(
                    area.as_mut().map_or(0, |b| set_bits(&mut b[..], from, to)),
                    grew,
                )
            }
            Repr::Partial(ext) => match ext.binary_search_by_key(&a, |e| e.0) {
                Ok(i) => Step::Done(
                    ext.get_mut(i)
                        .map_or(0, |e| set_bits(&mut e.1[..], from, to)),
                    0,
                ),
                Err(i) if ext.len() < PARTIAL_AREAS => {
                    let Ok(mut b) = area_box(flags) else {
                        return Step::Lose;
                    };
                    let n = set_bits(&mut b[..], from, to);
                    if ext.push_within_capacity((a, b)).is_err() {
                        return Step::Lose;
                    }
                    // Into its place in the order.
                    if let Some(tail) = ext.get_mut(i..) {
                        tail.rotate_right(1);
                    }
                    Step::Done(n, AREA_BYTES)
                }
                Err(_) => Step::Full,
            },
        }
    }

    /// Says of GiB `g` of the multi-level form that anything in it may
    /// have changed, and lets go of its bit maps.
    fn give_up_group(&mut self, g: usize) {
        let blocks = self.blocks;
        let Repr::Multi { groups, all } = &mut self.repr else {
            return;
        };
        let Some(w) = all.get_mut(g / 64) else {
            return;
        };
        if *w & (1 << (g % 64)) != 0 {
            return;
        }
        *w |= 1 << (g % 64);
        let (mut freed, mut had) = (0u64, 0u64);
        if let Some(slot) = groups.get_mut(g) {
            if let Some(grp) = slot.take() {
                freed += GROUP_BYTES;
                for a in grp.iter().flatten() {
                    freed += AREA_BYTES;
                    had += words_of(a);
                }
            }
        }
        let span = blocks
            .saturating_sub(g as u64 * GROUP_BLOCKS)
            .min(GROUP_BLOCKS);
        self.bytes = self.bytes.saturating_sub(freed);
        self.marked = self.marked.saturating_sub(had).saturating_add(span);
    }

    /// Turns the partial-area table into multi-level bit maps, moving the
    /// areas' bit maps over; loses track if memory is short.
    fn go_multi(&mut self, flags: kernel::alloc::Flags) {
        let Some(m) = Self::new_multi(self.blocks, flags) else {
            self.lose();
            return;
        };
        let old = core::mem::replace(&mut self.repr, m);
        self.bytes = multi_top_bytes(self.blocks);
        let Repr::Partial(mut ext) = old else {
            return;
        };
        while let Some((a, bits)) = ext.pop() {
            let g = (a / GROUP_AREAS as u64) as usize;
            let k = (a % GROUP_AREAS as u64) as usize;
            let Repr::Multi { groups, all } = &mut self.repr else {
                return;
            };
            if all.get(g / 64).is_some_and(|w| w & (1 << (g % 64)) != 0) {
                // Given up on already: its span is counted, not its bits.
                self.marked = self.marked.saturating_sub(words_of(&bits));
                continue;
            }
            let Some(slot) = groups.get_mut(g) else {
                continue;
            };
            if slot.is_none() {
                match group_box(flags) {
                    Ok(b) => {
                        *slot = Some(b);
                        self.bytes += GROUP_BYTES;
                    }
                    Err(_) => {
                        // Its bits are not counted in any group yet.
                        self.marked = self.marked.saturating_sub(words_of(&bits));
                        self.give_up_group(g);
                        continue;
                    }
                }
            }
            if let Some(area) = slot.as_mut().and_then(|s| s.get_mut(k)) {
                *area = Some(bits);
                self.bytes += AREA_BYTES;
            }
        }
    }

    fn new_multi(blocks: u64, flags: kernel::alloc::Flags) -> Option<Repr> {
        let n = usize::try_from(blocks.div_ceil(GROUP_BLOCKS)).ok()?;
        let mut groups = KVec::with_capacity(n, flags).ok()?;
        for _ in 0..n {
            groups.push_within_capacity(None).ok()?;
        }
        let all = KVec::from_elem(0u64, n.div_ceil(64), flags).ok()?;
        Some(Repr::Multi { groups, all })
    }

    fn state(&self, a: u64) -> AreaState {
        // An area not wholly within what it covers may differ anywhere.
        if a >= self.blocks / AREA_BLOCKS {
            return AreaState::All;
        }
        match &self.repr {
            // Read without the lock.
            Repr::Lost | Repr::Bitmap => AreaState::All,
            Repr::Multi { groups, all } => {
                let g = (a / GROUP_AREAS as u64) as usize;
                if all.get(g / 64).is_some_and(|w| w & (1 << (g % 64)) != 0) {
                    return AreaState::All;
                }
                let k = (a % GROUP_AREAS as u64) as usize;
                match groups.get(g) {
                    Some(Some(grp)) => match grp.get(k) {
                        Some(Some(bits)) => bits_or_clean(**bits),
                        _ => AreaState::Clean,
                    },
                    _ => AreaState::Clean,
                }
            }
            Repr::Partial(ext) => match ext.binary_search_by_key(&a, |e| e.0) {
                Ok(i) => ext.get(i).map_or(AreaState::Clean, |e| bits_or_clean(*e.1)),
                Err(_) => AreaState::Clean,
            },
        }
    }

    /// The first area at or after `a` that is not clean, if any below
    /// `end`.
    fn next(&self, mut a: u64, end: u64) -> Option<u64> {
        // From here on every area may differ.
        let tail = self.blocks / AREA_BLOCKS;
        while a < end.min(tail) {
            match &self.repr {
                Repr::Lost => return Some(a),
                Repr::Partial(ext) => {
                    let i = ext.partition_point(|e| e.0 < a);
                    a = ext.get(i).map_or(tail, |e| e.0.min(tail));
                    break;
                }
                Repr::Multi { groups, all } => {
                    let g = (a / GROUP_AREAS as u64) as usize;
                    let whole = all.get(g / 64).is_some_and(|w| w & (1 << (g % 64)) != 0);
                    if !whole && matches!(groups.get(g), Some(None)) {
                        a = ((g as u64 + 1) * GROUP_AREAS as u64).min(tail);
                        continue;
                    }
                    if self.state(a) != AreaState::Clean {
                        return Some(a);
                    }
                    a += 1;
                }
                Repr::Bitmap => return Some(a),
            }
        }
        (a < end).then_some(a)
    }
}

fn bits_or_clean(a: Area) -> AreaState {
    if a.iter().all(|w| *w == 0) {
        AreaState::Clean
    } else {
        AreaState::Bits(a)
    }
}

fn multi_top_bytes(blocks: u64) -> u64 {
    let n = blocks.div_ceil(GROUP_BLOCKS);
    n * 8 + n.div_ceil(64) * 8
}

impl Divergence {
    /// An empty divergence map of `form` for copy `copy` of `source`, of
    /// `blocks` blocks. `EINVAL` where the form does not take a volume
    /// that large.
    pub(crate) fn new(copy: u32, source: u32, blocks: u64, form: Form) -> Result<Arc<Self>> {
        let mut flat = KVec::new();
        let (repr, bytes) = match form {
            Form::Bitmap => {
                if blocks > BITMAP_MAX_BLOCKS {
                    return Err(EINVAL);
                }
                let n = usize::try_from(blocks.div_ceil(CHUNK_BLOCKS)).map_err(|_| EINVAL)?;
                flat = KVec::with_capacity(n, GFP_KERNEL)?;
                for _ in 0..n {
                    let c = pin_init::init_array_from_fn(|_| Atomic::new(0u64));
                    flat.push(KBox::init(c, GFP_KERNEL)?, GFP_KERNEL)?;
                }
                let bytes = n as u64 * (CHUNK_WORDS as u64 * 8 + 8);
                (Repr::Bitmap, bytes)
            }
            Form::Multi => {
                if blocks > MULTI_MAX_BLOCKS {
                    return Err(EINVAL);
                }
                let r = Inner::new_multi(blocks, GFP_KERNEL).ok_or(ENOMEM)?;
                (r, multi_top_bytes(blocks))
            }
            Form::Partial => (
                Repr::Partial(KVec::with_capacity(PARTIAL_AREAS, GFP_KERNEL)?),
                PARTIAL_AREAS as u64 * EXTENT_BYTES,
            ),
        };
        Arc::pin_init(
            pin_init!(Self {
                copy,
                source,
                dead: Atomic::new(0),
                flat,
                flat_marked: Atomic::new(0),
                inner <- new_spinlock!(Inner {
                    repr,
                    blocks,
                    marked: 0,
                    bytes,
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// Marks blocks `lba .. lba + n` as changed by one side. Does not
    /// sleep: what it needs it allocates with `GFP_NOWAIT`, and where that
    /// fails it gives up on precision, never on a mark.
    pub(crate) fn mark(&self, lba: u64, n: u64) {
        if !self.flat.is_empty() {
            self.mark_flat(lba, n);
            return;
        }
        let flags = GFP_NOWAIT | __GFP_NOWARN;
        let mut g = self.inner.lock();
        if matches!(g.repr, Repr::Lost) {
            return;
        }
        let end = lba.saturating_add(n).min(g.blocks);
        let mut b = lba;
        while b < end {
            let a = b / AREA_BLOCKS;
            // Whole GiBs of the multi-level form need no bit maps.
            if b % GROUP_BLOCKS == 0 && end - b >= GROUP_BLOCKS {
                if matches!(g.repr, Repr::Multi { .. }) {
                    g.give_up_group((b / GROUP_BLOCKS) as usize);
                    b += GROUP_BLOCKS;
                    continue;
                }
            }
            let to = ((a + 1) * AREA_BLOCKS).min(end);
            g.mark_area(a, b % AREA_BLOCKS, to - a * AREA_BLOCKS, flags);
            b = to;
        }
    }

    /// The word of the full bit map that holds block `b`'s bit.
    fn word(&self, b: u64) -> Option<&Atomic<u64>> {
        let c = usize::try_from(b / CHUNK_BLOCKS).ok()?;
        self.flat
            .get(c)
            .and_then(|ch| ch.get(((b % CHUNK_BLOCKS) / 64) as usize))
    }

    fn mark_flat(&self, lba: u64, n: u64) {
        let end = lba.saturating_add(n);
        let mut b = lba;
        while b < end {
            let lo = b % 64;
            let hi = (end - (b - lo)).min(64);
            let mask = if hi - lo == 64 {
                u64::MAX
            } else {
                ((1u64 << (hi - lo)) - 1) << lo
            };
            let Some(w) = self.word(b) else {
                // Past the map: compared whole anyway.
                return;
            };
            let mut cur = w.load(Relaxed);
            while cur & mask != mask {
                match w.cmpxchg(cur, cur | mask, Relaxed) {
                    Ok(_) => {
                        let new = u64::from((mask & !cur).count_ones());
                        self.flat_marked.fetch_add(new, Relaxed);
                        break;
                    }
                    Err(now) => cur = now,
                }
            }
            b = b - lo + hi;
        }
    }

    /// What the full bit map says of area `a`.
    fn flat_area(&self, a: u64) -> AreaState {
        let mut out = [0u64; AREA_WORDS];
        for (k, o) in out.iter_mut().enumerate() {
            match self.word(a * AREA_BLOCKS + k as u64 * 64) {
                Some(w) => *o = w.load(Relaxed),
                None => return AreaState::All,
            }
        }
        bits_or_clean(out)
    }

    /// Tells the other side to stop marking it: one side is gone.
    pub(crate) fn kill(&self) {
        self.dead.store(1, Relaxed);
    }

    /// Whether both sides are still there.
    pub(crate) fn live(&self) -> bool {
        self.dead.load(Relaxed) == 0
    }

    /// What it knows of area `a` (blocks `a * AREA_BLOCKS ..`).
    pub(crate) fn area(&self, a: u64) -> AreaState {
        let st = self.inner.lock().state(a);
        if st == AreaState::All && !self.flat.is_empty() && a < self.tail() {
            return self.flat_area(a);
        }
        st
    }

    /// The first area not wholly within what it covers.
    fn tail(&self) -> u64 {
        self.inner.lock().blocks / AREA_BLOCKS
    }

    /// The first area at or after `a` and below `end` that is not clean.
    pub(crate) fn next_area(&self, a: u64, end: u64) -> Option<u64> {
        if self.flat.is_empty() {
            return self.inner.lock().next(a, end);
        }
        let tail = self.tail();
        let mut a = a;
        while a < end.min(tail) {
            if self.flat_area(a) != AreaState::Clean {
                return Some(a);
            }
            a += 1;
        }
        (a < end).then_some(a)
    }

    /// The end of the run of areas from `a`, one that may differ
    /// anywhere, that may all differ anywhere: compared as one run, they
    /// pass over what both maps share as whole pages.
    pub(crate) fn all_until(&self, a: u64) -> u64 {
        let g = self.inner.lock();
        let tail = g.blocks / AREA_BLOCKS;
        if a >= tail {
            return u64::MAX;
        }
        match &g.repr {
            Repr::Lost => u64::MAX,
            Repr::Bitmap => a + 1,
            Repr::Multi { all, .. } => {
                let whole = |k: u64| {
                    all.get((k / 64) as usize)
                        .is_some_and(|w| w & (1 << (k % 64)) != 0)
                };
                let mut k = a / GROUP_AREAS as u64;
                if !whole(k) {
                    return a + 1;
                }
                while whole(k) {
                    k += 1;
                }
                let end = k * GROUP_AREAS as u64;
                if end >= tail {
                    u64::MAX
                } else {
                    end
                }
            }
            _ => a + 1,
        }
    }

    /// Its form, size and marks.
    pub(crate) fn stats(&self) -> Stats {
        let g = self.inner.lock();
        Stats {
            form: match g.repr {
                Repr::Bitmap => Some(Form::Bitmap),
                Repr::Multi { .. } => Some(Form::Multi),
                Repr::Partial(_) => Some(Form::Partial),
                Repr::Lost => None,
            },
            bytes: g.bytes,
            marked: g.marked.saturating_add(self.flat_marked.load(Relaxed)),
        }
    }
}

#[kernel::prelude::kunit_tests(stria_diverge)]
mod tests {
    use super::*;

    /// A reference bit per block, and a cheap generator of marks.
    struct Model {
        bits: KVec<u64>,
        seed: u64,
    }

    impl Model {
        fn new(blocks: u64) -> Result<Self> {
            Ok(Model {
                bits: KVec::from_elem(0u64, blocks.div_ceil(64) as usize, GFP_KERNEL)?,
                seed: 0x9e37_79b9_7f4a_7c15,
            })
        }

        fn next(&mut self) -> u64 {
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            self.seed
        }

        fn mark(&mut self, lba: u64, n: u64) {
            for b in lba..lba + n {
                if let Some(w) = self.bits.get_mut((b / 64) as usize) {
                    *w |= 1 << (b % 64);
                }
            }
        }

        fn is_set(&self, b: u64) -> bool {
            self.bits
                .get((b / 64) as usize)
                .is_some_and(|w| w & (1 << (b % 64)) != 0)
        }
    }

    /// Every block the model marked is marked or in an area that may
    /// differ anywhere; where the map keeps bits they are exact; and
    /// `next_area` finds exactly the areas that are not clean.
    fn agrees(d: &Divergence, m: &Model, blocks: u64) -> bool {
        let areas = blocks.div_ceil(AREA_BLOCKS);
        let mut expect_next = None;
        for a in (0..areas).rev() {
            let st = d.area(a);
            for i in 0..AREA_BLOCKS {
                let b = a * AREA_BLOCKS + i;
                if b >= blocks {
                    break;
                }
                let want = m.is_set(b);
                let ok = match st {
                    AreaState::Clean => !want,
                    AreaState::All => true,
                    AreaState::Bits(w) => {
                        let got = w
                            .get((i / 64) as usize)
                            .is_some_and(|x| x & (1 << (i % 64)) != 0);
                        got == want
                    }
                };
                if !ok {
                    pr_err!("area {} block {}: {:?} against {}\n", a, b, st, want);
                    return false;
                }
            }
            if st != AreaState::Clean {
                expect_next = Some(a);
            }
            if d.next_area(a, areas) != expect_next {
                pr_err!("next_area({}) is {:?}\n", a, d.next_area(a, areas));
                return false;
            }
        }
        true
    }

    fn random_marks(form: Form, blocks: u64, rounds: u32, span: u64) -> Result<(bool, Stats)> {
        let d = Divergence::new(2, 1, blocks, form)?;
        let mut m = Model::new(blocks)?;
        for _ in 0..rounds {
            let lba = m.next() % blocks;
            let n = (m.next() % span + 1).min(blocks - lba);
            d.mark(lba, n);
            m.mark(lba, n);
        }
        Ok((agrees(&d, &m, blocks), d.stats()))
    }

    #[test]
    fn every_form_keeps_every_mark() -> Result {
        // 1 GiB and a little: a partial last area.
        let blocks = GROUP_BLOCKS + 100;
        for form in [Form::Bitmap, Form::Multi, Form::Partial] {
            let (ok, st) = random_marks(form, blocks, 300, 40)?;
            assert!(ok);
            assert!(st.marked > 0);
        }
        Ok(())
    }

    #[test]
    fn bits_are_exact_where_kept() -> Result {
        let blocks = 4 * GROUP_BLOCKS;
        let d = Divergence::new(2, 1, blocks, Form::Multi)?;
        d.mark(5, 3);
        d.mark(GROUP_BLOCKS * 3 + 511, 1);
        let mut want = [0u64; AREA_WORDS];
        want[0] = 0b1110_0000;
        assert_eq!(d.area(0), AreaState::Bits(want));
        assert_eq!(d.area(1), AreaState::Clean);
        let mut last = [0u64; AREA_WORDS];
        last[7] = 1 << 63;
        assert_eq!(d.area(3 * GROUP_AREAS as u64), AreaState::Bits(last));
        assert_eq!(
            d.next_area(1, 4 * GROUP_AREAS as u64),
            Some(3 * GROUP_AREAS as u64)
        );
        let st = d.stats();
        assert_eq!(st.marked, 4);
        // Two groups of 4 KiB and two area bit maps over the top level.
        assert_eq!(
            st.bytes,
            multi_top_bytes(blocks) + 2 * GROUP_BYTES + 2 * AREA_BYTES
        );
        Ok(())
    }

    #[test]
    fn a_whole_gib_needs_no_bit_maps() -> Result {
        let blocks = 4 * GROUP_BLOCKS;
        let d = Divergence::new(2, 1, blocks, Form::Multi)?;
        d.mark(GROUP_BLOCKS + 7, 1);
        d.mark(GROUP_BLOCKS, GROUP_BLOCKS);
        let st = d.stats();
        assert_eq!(st.marked, GROUP_BLOCKS);
        assert_eq!(st.bytes, multi_top_bytes(blocks));
        assert_eq!(d.area(GROUP_AREAS as u64 + 9), AreaState::All);
        assert_eq!(
            d.next_area(0, 4 * GROUP_AREAS as u64),
            Some(GROUP_AREAS as u64)
        );
        assert_eq!(
            d.next_area(2 * GROUP_AREAS as u64, 4 * GROUP_AREAS as u64),
            None
        );
        // The GiB is one run to compare whole; past the end, everything.
        let gib = GROUP_AREAS as u64;
        assert_eq!(d.all_until(gib + 9), 2 * gib);
        assert_eq!(d.all_until(0), 1);
        assert_eq!(d.all_until(4 * gib), u64::MAX);
        Ok(())
    }

    #[test]
    fn a_full_table_becomes_multi_level() -> Result {
        let blocks = 8 * GROUP_BLOCKS;
        let d = Divergence::new(2, 1, blocks, Form::Partial)?;
        let mut m = Model::new(blocks)?;
        for k in 0..PARTIAL_AREAS as u64 {
            // Areas spread over the volume, one block each.
            let b = (k * 37 % 4096) * AREA_BLOCKS + k;
            d.mark(b, 1);
            m.mark(b, 1);
        }
        assert_eq!(d.stats().form, Some(Form::Partial));
        assert!(agrees(&d, &m, blocks));
        let b = 4095 * AREA_BLOCKS + 3;
        d.mark(b, 1);
        m.mark(b, 1);
        let st = d.stats();
        assert_eq!(st.form, Some(Form::Multi));
        assert_eq!(st.marked, PARTIAL_AREAS as u64 + 1);
        assert!(agrees(&d, &m, blocks));
        Ok(())
    }

    #[test]
    fn auto_picks_by_size_and_sparsity() {
        assert_eq!(Form::auto(BITMAP_AUTO_BLOCKS, 10_000), Form::Bitmap);
        assert_eq!(Form::auto(BITMAP_AUTO_BLOCKS + 1, 10), Form::Partial);
        assert_eq!(Form::auto(BITMAP_AUTO_BLOCKS + 1, 10_000), Form::Multi);
        assert_eq!(Form::auto(MULTI_MAX_BLOCKS + 1, 10_000), Form::Partial);
    }

    #[test]
    fn too_large_for_the_form() {
        assert!(Divergence::new(2, 1, BITMAP_MAX_BLOCKS + 1, Form::Bitmap).is_err());
        assert!(Divergence::new(2, 1, MULTI_MAX_BLOCKS + 1, Form::Multi).is_err());
    }
}
