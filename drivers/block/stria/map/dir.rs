// SPDX-License-Identifier: GPL-2.0

//! A map's directory: one slot per leaf, in pages of [`PAGE_SLOTS`] slots
//! (a GiB of volume each). An instant copy points at its source's pages,
//! which both then share: making it costs a pointer per GiB of volume,
//! not a slot per leaf. The first change of a slot in a shared page gives
//! that map a page of its own, whose slots are one more holder of their
//! leaves and deltas (see `Documentation/stria-copy.rst`).

use super::leaf::LeafRef;
use super::Entry;
use kernel::prelude::*;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;
use kernel::sync::UniqueArc;

/// Slots in a directory page: a GiB of volume, 8 KiB of slots.
pub(super) const PAGE_SLOTS: usize = 512;

/// The slots of a GiB of volume.
///
/// # Invariants
///
/// `slots` holds [`PAGE_SLOTS`] slots. `holders` counts the directories
/// pointing at the page; one that is shared (reached through an [`Arc`])
/// never changes its slots, and so reads the same for every holder.
pub(super) struct Page {
    holders: Atomic<u32>,
    slots: KVec<Option<LeafRef>>,
}

impl Page {
    /// An empty page, allocated with `flags`.
    pub(super) fn new(flags: kernel::alloc::Flags) -> Result<UniqueArc<Self>> {
        let mut slots = KVec::with_capacity(PAGE_SLOTS, flags)?;
        for _ in 0..PAGE_SLOTS {
            slots.push(None, flags)?;
        }
        // INVARIANT: a full page of slots, with its one future holder.
        Ok(UniqueArc::new(
            Page {
                holders: Atomic::new(1),
                slots,
            },
            flags,
        )?)
    }
}

/// A directory's hold on a page.
enum PageRef {
    /// This directory's alone: its slots change in place.
    Own(UniqueArc<Page>),
    /// Read by `holders` directories, none of which changes it.
    Shared(Arc<Page>),
}

impl PageRef {
    fn page(&self) -> &Page {
        match self {
            PageRef::Own(p) => p,
            PageRef::Shared(p) => p,
        }
    }
}

/// Lets go of page `p` as one of its holders; returns whether it was the
/// last, whose slots are then to be released.
fn let_go(p: &PageRef) -> bool {
    match p {
        PageRef::Own(_) => true,
        PageRef::Shared(s) => s.holders.fetch_sub(1, Relaxed) == 1,
    }
}

/// Lets go of a page: when no directory holds it any more, of every slot
/// in it (`dropped` sees what nothing reads any more).
fn release(p: &PageRef, dropped: &mut impl FnMut(Entry)) {
    if let_go(p) {
        for s in p.page().slots.iter().flatten() {
            s.release(dropped);
        }
    }
}

/// Pages let go of, to be freed where sleeping is allowed.
pub(super) struct Pages(#[allow(dead_code)] KVVec<Option<PageRef>>);

/// What one leaf released costs a step of [`Detached::release_step`], in
/// slots looked at: a leaf holds [`crate::map::LEAF_ENTRIES`] entries.
pub(super) const LEAF_COST: usize = 512;

/// The pages of a directory detached from its map, released a step at a
/// time: the page and slot the next step starts at, and whether this was
/// the last holder of that page (known once the page is started).
pub(super) struct Detached {
    pages: KVVec<Option<PageRef>>,
    page: usize,
    slot: usize,
    last: Option<bool>,
}

impl Detached {
    /// Releases leaves as [`release`] does, until `budget` slots (a leaf
    /// counting [`LEAF_COST`]) are looked at; returns whether every page is
    /// done. Entries nothing reads any more go to `dropped`.
    pub(super) fn release_step(&mut self, budget: usize, dropped: &mut impl FnMut(Entry)) -> bool {
        // Some progress, whatever the budget.
        let mut budget = budget.max(1);
        while let Some(p) = self.pages.get(self.page) {
            if let Some(p) = p {
                let last = *self.last.get_or_insert_with(|| let_go(p));
                let slots = &p.page().slots;
                while last && self.slot < PAGE_SLOTS {
                    if budget == 0 {
                        return false;
                    }
                    if let Some(Some(s)) = slots.get(self.slot) {
                        s.release(dropped);
                        budget = budget.saturating_sub(LEAF_COST);
                    } else {
                        budget -= 1;
                    }
                    self.slot += 1;
                }
            }
            budget = budget.saturating_sub(1);
            self.page += 1;
            self.slot = 0;
            self.last = None;
            if budget == 0 {
                return self.page >= self.pages.len();
            }
        }
        true
    }

    /// The pages, released, to be freed where sleeping is allowed.
    pub(super) fn into_pages(self) -> Pages {
        Pages(self.pages)
    }
}

/// A map's directory.
///
/// # Invariants
///
/// `pages` holds `slots.div_ceil(PAGE_SLOTS)` entries; a missing page
/// has no slot in use.
pub(super) struct Dir {
    pages: KVVec<Option<PageRef>>,
    slots: usize,
}

impl Dir {
    /// A directory of `slots` empty slots: a pointer per page.
    pub(super) fn new(slots: usize) -> Result<Self> {
        let n = slots.div_ceil(PAGE_SLOTS);
        let mut pages = KVVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            pages.push(None, GFP_KERNEL)?;
        }
        // INVARIANT: a missing page for every `PAGE_SLOTS` slots.
        Ok(Dir { pages, slots })
    }

    /// Slots.
    pub(super) fn len(&self) -> usize {
        self.slots
    }

    fn page(&self, i: usize) -> Option<&PageRef> {
        if i >= self.slots {
            return None;
        }
        self.pages.get(i / PAGE_SLOTS)?.as_ref()
    }

    /// What slot `i` points at.
    pub(super) fn get(&self, i: usize) -> Option<&LeafRef> {
        self.page(i)?.page().slots.get(i % PAGE_SLOTS)?.as_ref()
    }

    /// Who the page of slot `i` is, where it is shared.
    pub(super) fn page_key(&self, i: usize) -> Option<usize> {
        match self.page(i)? {
            PageRef::Shared(p) => Some(Arc::as_ptr(p) as usize),
            PageRef::Own(_) => None,
        }
    }

    /// Whether slot `i` may change: its page is this directory's own.
    pub(super) fn writable(&self, i: usize) -> bool {
        matches!(self.page(i), Some(PageRef::Own(_)))
    }

    /// Whether a change of slot `i` needs a page first: where there is
    /// none (only if `create`: an empty slot needs none to be cleared),
    /// or where it is shared.
    pub(super) fn wants_page(&self, i: usize, create: bool) -> bool {
        if i >= self.slots {
            return false;
        }
        match self.pages.get(i / PAGE_SLOTS) {
            Some(None) => create,
            Some(Some(PageRef::Shared(_))) => create || self.get(i).is_some(),
            _ => false,
        }
    }

    /// LeafRef `i`, to change: only in a page of this directory's own.
    pub(super) fn get_mut(&mut self, i: usize) -> Option<&mut Option<LeafRef>> {
        if i >= self.slots {
            return None;
        }
        match self.pages.get_mut(i / PAGE_SLOTS)? {
            Some(PageRef::Own(p)) => p.slots.get_mut(i % PAGE_SLOTS),
            _ => None,
        }
    }

    /// Calls `f` with every slot in use below `end` and whether its page
    /// is shared.
    pub(super) fn each(&self, end: usize, mut f: impl FnMut(usize, &LeafRef, bool)) {
        for (k, p) in self.pages.iter().enumerate() {
            let Some(p) = p else { continue };
            let shared = matches!(p, PageRef::Shared(s) if s.holders.load(Relaxed) > 1);
            for (j, s) in p.page().slots.iter().enumerate() {
                let i = k * PAGE_SLOTS + j;
                if i >= end {
                    return;
                }
                if let Some(s) = s {
                    f(i, s, shared);
                }
            }
        }
    }

    /// Every slot this directory holds, past its end too.
    pub(super) fn held(&self) -> impl Iterator<Item = &LeafRef> {
        self.pages
            .iter()
            .flatten()
            .flat_map(|p| p.page().slots.iter().flatten())
    }

    /// Pages: `(own, shared)`, where a shared page that other holders
    /// let go of counts as own.
    pub(super) fn pages(&self) -> (u64, u64) {
        let mut n = (0, 0);
        for p in self.pages.iter().flatten() {
            match p {
                PageRef::Shared(s) if s.holders.load(Relaxed) > 1 => n.1 += 1,
                _ => n.0 += 1,
            }
        }
        n
    }

    /// Bytes of the pointers to pages.
    pub(super) fn top_bytes(&self) -> u64 {
        (self.pages.len() as u64).saturating_mul(core::mem::size_of::<Option<PageRef>>() as u64)
    }

    /// Puts `new`, an empty page, where a change of slot `i` wants one
    /// ([`Self::wants_page`]): in place of a shared page it points at
    /// what that one did. Does nothing where the page is this
    /// directory's own already.
    pub(super) fn install(
        &mut self,
        i: usize,
        mut new: UniqueArc<Page>,
        dropped: &mut impl FnMut(Entry),
    ) {
        if i >= self.slots {
            return;
        }
        let k = i / PAGE_SLOTS;
        let end = self.slots.saturating_sub(k * PAGE_SLOTS);
        let Some(p) = self.pages.get_mut(k) else {
            return;
        };
        if let Some(PageRef::Shared(old)) = p {
            // Slots past the end stay with the old page: this directory
            // no longer reads them.
            for (n, o) in new.slots.iter_mut().zip(old.slots.iter()).take(end) {
                *n = o.as_ref().map(LeafRef::share);
            }
        } else if p.is_some() {
            return;
        }
        if let Some(old) = p.replace(PageRef::Own(new)) {
            release(&old, dropped);
        }
    }

    /// Points `copy`, empty and of the same size, at every page of this
    /// directory, which both share from then on.
    pub(super) fn share_into(&mut self, copy: &mut Dir) -> Result {
        if copy.slots != self.slots
            || copy.pages.len() != self.pages.len()
            || copy.pages.iter().any(Option::is_some)
        {
            return Err(EINVAL);
        }
        for (p, c) in self.pages.iter_mut().zip(copy.pages.iter_mut()) {
            let shared: Arc<Page> = match p.take() {
                None => continue,
                Some(PageRef::Own(u)) => u.into(),
                Some(PageRef::Shared(s)) => s,
            };
            shared.holders.fetch_add(1, Relaxed);
            *c = Some(PageRef::Shared(shared.clone()));
            *p = Some(PageRef::Shared(shared));
        }
        Ok(())
    }

    /// Lets go of every page (`dropped` sees what nothing reads any
    /// more) and returns them, to be freed outside the map's lock.
    pub(super) fn detach(&mut self) -> Detached {
        let mut pages = KVVec::new();
        core::mem::swap(&mut self.pages, &mut pages);
        self.slots = 0;
        Detached {
            pages,
            page: 0,
            slot: 0,
            last: None,
        }
    }

    /// Moves the pages into `new`, a directory for another size, and
    /// takes its place. `cut` sees every slot this directory read that
    /// the new one does not; `dropped` sees what nothing reads any more.
    /// Where the new end falls inside a shared page that reads more past
    /// it, `spare` becomes this directory's copy of the part before it,
    /// so that growing again reads nothing there.
    pub(super) fn resize(
        &mut self,
        mut new: Dir,
        spare: Option<UniqueArc<Page>>,
        cut: &mut impl FnMut(&LeafRef),
        dropped: &mut impl FnMut(Entry),
    ) -> Pages {
        let keep = new.slots;
        let old_end = self.slots;
        for (n, o) in new.pages.iter_mut().zip(self.pages.iter_mut()) {
            *n = o.take();
        }
        // The kept page the new end falls in, if it falls inside one.
        let tail = keep % PAGE_SLOTS;
        let mut copy = false;
        if let (true, Some(Some(p))) = (tail != 0, new.pages.last_mut()) {
            let base = keep - tail;
            let end = old_end.saturating_sub(base).min(PAGE_SLOTS);
            match p {
                PageRef::Own(p) => {
                    for s in p.slots.iter_mut().take(end).skip(tail) {
                        if let Some(s) = s.take() {
                            cut(&s);
                            s.release(dropped);
                        }
                    }
                }
                PageRef::Shared(p) => {
                    for s in p.slots.iter().take(end).skip(tail).flatten() {
                        cut(s);
                        copy = true;
                    }
                }
            }
        }
        let n = new.pages.len();
        core::mem::swap(self, &mut new);
        if let (true, Some(spare)) = (copy, spare) {
            self.install(keep - 1, spare, dropped);
        }
        for (k, p) in new.pages.iter().enumerate().skip(n) {
            let Some(p) = p else { continue };
            let end = old_end.saturating_sub(k * PAGE_SLOTS).min(PAGE_SLOTS);
            for s in p.page().slots.iter().take(end).flatten() {
                cut(s);
            }
            release(p, dropped);
        }
        Pages(new.pages)
    }
}
