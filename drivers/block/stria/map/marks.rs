// SPDX-License-Identifier: GPL-2.0

//! One side's record of the blocks it changed since a copy point, in one
//! of the three bit-map forms: half of a copy's divergence map (see
//! `diverge.rs`).
//!
//! A record is marked by one map only, the one whose list holds it, and
//! only with that map's lock held; readers (a diff) take no map lock. So
//! a mark of the full bit map is a load and a store, no
//! read-modify-write, and readers see each word whole.
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
pub(super) const AREA_WORDS: usize = (AREA_BLOCKS / 64) as usize;
/// Areas of a group of the multi-level form: 1 GiB.
pub(super) const GROUP_AREAS: usize = 512;
pub(super) const GROUP_BLOCKS: u64 = AREA_BLOCKS * GROUP_AREAS as u64;
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
    /// The bits are [`Marks::flat`], which marks need no lock for.
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

/// What one side of a copy changed since the copy point.
#[pin_data]
pub(crate) struct Marks {
    /// The volume whose changes it records: the only one that marks it.
    pub(crate) owner: u32,
    /// The form it was made in.
    pub(crate) form: Form,
    /// Blocks it covers.
    pub(crate) blocks: u64,
    /// Divergence maps that read it as their source's side.
    users: Atomic<u32>,
    /// Non-zero once its owner is gone: nothing marks it any more.
    gone: Atomic<u32>,
    /// The full bit map form's bits, a page per 128 MiB, empty in the
    /// other forms: a mark needs no lock of its own.
    flat: KVec<KBox<Chunk>>,
    /// Bits set in `flat`.
    flat_marked: Atomic<u64>,
    #[pin]
    inner: SpinLock<Inner>,
}

/// What a record or a divergence map reports of itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Its form now, `None` once it lost track.
    pub(crate) form: Option<Form>,
    /// Bytes of memory.
    pub(crate) bytes: u64,
    /// Blocks marked.
    pub(crate) marked: u64,
}

pub(super) fn words_of(a: &Area) -> u64 {
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
        let (mask, next) = word_mask(b, to);
        if let Some(word) = a.get_mut((b / 64) as usize) {
            new += u64::from((mask & !*word).count_ones());
            *word |= mask;
        }
        b = next;
    }
    new
}

/// The bits of the word holding block `b`'s bit that blocks `b .. end`
/// (`b < end`) cover, and the first block of the next word or `end`.
fn word_mask(b: u64, end: u64) -> (u64, u64) {
    let lo = b % 64;
    let hi = (end - (b - lo)).min(64);
    let mask = if hi - lo == 64 {
        u64::MAX
    } else {
        ((1u64 << (hi - lo)) - 1) << lo
    };
    (mask, b - lo + hi)
}

pub(super) const AREA_BYTES: u64 = core::mem::size_of::<Area>() as u64;
pub(super) const GROUP_BYTES: u64 = core::mem::size_of::<Group>() as u64;
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

pub(super) fn multi_top_bytes(blocks: u64) -> u64 {
    let n = blocks.div_ceil(GROUP_BLOCKS);
    n * 8 + n.div_ceil(64) * 8
}

impl Marks {
    /// An empty record of `form` of the changes of volume `owner`, of
    /// `blocks` blocks. `EINVAL` where the form does not take a volume
    /// that large.
    pub(crate) fn new(owner: u32, blocks: u64, form: Form) -> Result<Arc<Self>> {
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
        // `pin_init!` binds each field it has set by the field's name.
        let covered = blocks;
        Arc::pin_init(
            pin_init!(Self {
                owner,
                form,
                blocks: covered,
                users: Atomic::new(0),
                gone: Atomic::new(0),
                flat,
                flat_marked: Atomic::new(0),
                inner <- new_spinlock!(Inner {
                    repr,
                    blocks: covered,
                    marked: 0,
                    bytes,
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// Marks blocks `lba .. lba + n` as changed by its owner, whose map's
    /// lock the caller holds. Does not sleep: what it needs it allocates with `GFP_NOWAIT`, and where that
    /// fails it gives up on precision, never on a mark.
    pub(crate) fn mark(&self, lba: u64, n: u64) {
        // Past what it covers either side may differ anyway; the full bit
        // map's last page reaches past it, and bits there would count as
        // marks no one made.
        let end = lba.saturating_add(n).min(self.blocks);
        if !self.flat.is_empty() {
            self.mark_flat(lba, end);
            return;
        }
        let flags = GFP_NOWAIT | __GFP_NOWARN;
        let mut g = self.inner.lock();
        if matches!(g.repr, Repr::Lost) {
            return;
        }
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

    /// [`Self::mark`] of blocks `lba .. end` for the full bit map form.
    fn mark_flat(&self, lba: u64, end: u64) {
        let mut b = lba;
        let mut new = 0u64;
        while b < end {
            let (mask, next) = word_mask(b, end);
            let Some(w) = self.word(b) else {
                // Past the map: compared whole anyway.
                break;
            };
            let cur = w.load(Relaxed);
            if cur & mask != mask {
                // Its one writer holds the owner's map lock: no other store
                // can come between the load and this one.
                w.store(cur | mask, Relaxed);
                new += u64::from((mask & !cur).count_ones());
            }
            b = next;
        }
        if new != 0 {
            let n = self.flat_marked.load(Relaxed).saturating_add(new);
            self.flat_marked.store(n, Relaxed);
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

    /// Says that its owner is gone: nothing marks it any more.
    pub(crate) fn forget(&self) {
        self.gone.store(1, Relaxed);
    }

    /// Whether its owner still marks it.
    pub(crate) fn marking(&self) -> bool {
        self.gone.load(Relaxed) == 0
    }

    /// One more divergence map reads it as its source's side.
    pub(super) fn add_user(&self) {
        self.users.fetch_add(1, Relaxed);
    }

    /// One divergence map that read it is gone.
    pub(super) fn drop_user(&self) {
        self.users.fetch_sub(1, Relaxed);
    }

    /// Whether a divergence map still reads it: its owner need not mark
    /// it otherwise.
    pub(crate) fn read(&self) -> bool {
        self.users.load(Relaxed) != 0
    }

    /// Whether a copy of its owner taken now can read it as its source's
    /// side: one of the same form and size that nothing marked yet. (Marks
    /// from before a copy point would cost the copy's diffs time, never
    /// their answer.)
    pub(crate) fn fits(&self, owner: u32, blocks: u64, form: Form) -> bool {
        self.owner == owner
            && self.blocks == blocks
            && self.form == form
            && self.marking()
            && self.stats().marked == 0
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
        self.blocks / AREA_BLOCKS
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
