// SPDX-License-Identifier: GPL-2.0

//! The map under its lock: lookups, updates, unmaps and walks of the
//! entries, keeping live counts and shared leaves right.

use super::leaf::recount;
use super::leaf::Change;
use super::leaf::Leaf;
use super::leaf::LeafRef;
use super::leaf::New;
use super::leaf::NewLeaf;
use super::leaf::DELTA_ENTRIES;
use super::slot_index;
use super::within;
use super::Entry;
use super::Locked;
use super::LEAF_ENTRIES;
use kernel::prelude::*;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;

impl Locked<'_> {
    fn slot(&self, lba: u64) -> Option<&LeafRef> {
        self.0.leaves.get(slot_index(lba / LEAF_ENTRIES)?)
    }

    /// Who slot `i` and its page are, where shared: two maps with the
    /// same read the same there.
    pub(super) fn keys(&self, i: usize) -> (Option<usize>, Option<usize>) {
        let slot = self.0.leaves.get(i).map(|s| match s {
            LeafRef::Full(l) => Arc::as_ptr(l) as usize,
            LeafRef::Delta(d) => Arc::as_ptr(d) as usize,
        });
        (self.0.leaves.page_key(i), slot)
    }

    /// Fills `out` with the entries of slot `i` (zeros where there is
    /// none) and returns how many are mapped.
    pub(super) fn entries(&self, i: usize, out: &mut [u64]) -> u64 {
        let s = self.0.leaves.get(i);
        let mut n = 0;
        for (k, o) in out.iter_mut().enumerate() {
            *o = s.map_or(0, |s| s.get(k as u64));
            n += u64::from(*o != 0);
        }
        n
    }

    /// Whether the slot of block `lba` may change.
    pub(super) fn writable(&self, lba: u64) -> bool {
        slot_index(lba / LEAF_ENTRIES).is_some_and(|k| self.0.leaves.writable(k))
    }

    /// Where block `lba` lives.
    pub(crate) fn get(&mut self, lba: u64) -> Entry {
        self.slot(lba).map_or(Entry::Unmapped, |s| {
            Entry::decode(s.get(lba % LEAF_ENTRIES))
        })
    }

    /// Points block `lba` at `e`. Returns the entry this drops: where the
    /// block was, unless some other map still reads that (then
    /// `Unmapped`). Fails with `ENOMEM` when its leaf was not prepared
    /// (missing, shared, or a delta without room) and `EINVAL` for an
    /// entry that cannot be encoded.
    pub(crate) fn set(&mut self, lba: u64, e: Entry) -> Result<Entry> {
        let v = e.encode().ok_or(EINVAL)?;
        let i = lba % LEAF_ENTRIES;
        if !self.writable(lba) {
            return Err(ENOMEM);
        }
        let (old, dropped) = match self.slot(lba) {
            Some(LeafRef::Full(leaf)) if !leaf.shared() => {
                let old = leaf.get(i);
                leaf.put(i, v);
                recount(&leaf.count, old, v);
                (old, old)
            }
            Some(LeafRef::Delta(d)) if !d.shared() => d.change(i, v)?,
            _ => return Err(ENOMEM),
        };
        match (old != 0, v != 0) {
            (false, true) => self.0.mapped += 1,
            (true, false) => self.0.mapped = self.0.mapped.saturating_sub(1),
            _ => {}
        }
        if old != v {
            self.0.mark(lba, 1);
        }
        Ok(Entry::decode(dropped))
    }

    /// Keeps room in the deltas of blocks `lba .. lba + n` for the
    /// changes a write there makes; false if one lacks it.
    pub(super) fn reserve(&mut self, lba: u64, n: u64) -> bool {
        // Most maps have no delta: writes to them skip the walk.
        if n == 0 || self.0.nr_deltas == 0 {
            return true;
        }
        let end = lba.saturating_add(n);
        for pass in 0..2 {
            let mut i = lba / LEAF_ENTRIES;
            while i * LEAF_ENTRIES < end {
                let (from, to) = within(i, lba, end);
                let own = self.writable(i * LEAF_ENTRIES);
                if let Some(LeafRef::Delta(d)) = self.slot(i * LEAF_ENTRIES) {
                    let need = d.unchanged_in(from, to);
                    if pass == 0 && (!own || d.shared() || need > d.room()) {
                        return false;
                    }
                    if pass == 1 {
                        d.reserved.fetch_add(need as u32, Relaxed);
                    }
                }
                i += 1;
            }
        }
        true
    }

    /// Puts `leaf` at directory index `i` if a write could not go there
    /// as it is: where there was none; in place of a shared leaf, or of a
    /// delta, reading what it read (`f` sees each mapped entry, now read
    /// once more, and each no longer read); or, a delta, over the shared
    /// leaf it was made for.
    pub(crate) fn install(&mut self, i: u64, leaf: NewLeaf, mut f: impl FnMut(Change, Entry)) {
        let inner = &mut *self.0;
        let Some(k) = slot_index(i) else {
            return;
        };
        let new = match leaf.0 {
            New::Page(p) => {
                inner.leaves.install(k, p, &mut |e| f(Change::Dropped, e));
                return;
            }
            New::LeafRef(s) => s,
        };
        let Some(slot) = inner.leaves.get_mut(k) else {
            return;
        };
        let (old, full) = match (new, slot.as_ref()) {
            (LeafRef::Full(n), None) => {
                *slot = Some(LeafRef::Full(n));
                inner.nr_leaves += 1;
                return;
            }
            (LeafRef::Full(n), Some(s)) if !matches!(s, LeafRef::Full(l) if !l.shared()) => {
                let mut count = 0;
                for (k, e) in n.entries.iter().enumerate() {
                    let v = s.get(k as u64);
                    if v != 0 {
                        e.store(v, Relaxed);
                        count += 1;
                        f(Change::Added, Entry::decode(v));
                    }
                }
                n.count.store(count, Relaxed);
                (slot.replace(LeafRef::Full(n)), true)
            }
            (LeafRef::Delta(n), Some(LeafRef::Full(l)))
                if l.shared() && Arc::ptr_eq(&n.base, l) =>
            {
                // It reads what the directory read: nothing changes hands.
                n.view.store(l.count.load(Relaxed), Relaxed);
                l.deltas.fetch_add(1, Relaxed);
                l.holders.fetch_sub(1, Relaxed);
                inner.nr_leaves = inner.nr_leaves.saturating_sub(1);
                inner.nr_deltas += 1;
                *slot = Some(LeafRef::Delta(n));
                return;
            }
            (LeafRef::Delta(n), Some(LeafRef::Delta(d)))
                if d.shared() && Arc::ptr_eq(&n.base, &d.base) =>
            {
                for (a, b) in n.bits.iter().zip(d.bits.iter()) {
                    a.store(b.load(Relaxed), Relaxed);
                }
                let len = d.len();
                for (a, b) in n.ptrs.iter().zip(d.ptrs.iter()).take(len) {
                    let v = b.load(Relaxed);
                    a.store(v, Relaxed);
                    if v != 0 {
                        f(Change::Added, Entry::decode(v));
                    }
                }
                for (k, _) in d.changes() {
                    n.base.set_over(k, n.base.over(k) + 1);
                }
                n.len.store(len as u32, Relaxed);
                n.view.store(d.view.load(Relaxed), Relaxed);
                n.own.store(d.own.load(Relaxed), Relaxed);
                n.base.deltas.fetch_add(1, Relaxed);
                (slot.replace(LeafRef::Delta(n)), false)
            }
            _ => return,
        };
        if let Some(o) = old {
            inner.count(&o, -1);
            if full {
                inner.nr_leaves += 1;
            } else {
                inner.nr_deltas += 1;
            }
            o.release(&mut |e| f(Change::Dropped, e));
        }
    }

    /// Unmaps blocks `lba .. lba + n`, skipping leaves that do not exist
    /// (nothing there is mapped) and letting go of those it covers whole;
    /// `dropped` sees every entry no map reads any more. Fails with
    /// `ENOMEM`, changing nothing, if a leaf it covers in part was not
    /// prepared.
    pub(crate) fn unmap(&mut self, lba: u64, n: u64, mut dropped: impl FnMut(Entry)) -> Result {
        if n == 0 {
            return Ok(());
        }
        let end = lba
            .checked_add(n)
            .filter(|&e| e <= self.0.size_blocks)
            .ok_or(EINVAL)?;
        let first = lba / LEAF_ENTRIES;
        let mut i = first;
        while i * LEAF_ENTRIES < end {
            let (from, to) = within(i, lba, end);
            let whole = from == 0 && to == LEAF_ENTRIES;
            let own = self.writable(i * LEAF_ENTRIES);
            match self.slot(i * LEAF_ENTRIES) {
                Some(_) if !own => return Err(ENOMEM),
                Some(s) if !whole && !s.own() => return Err(ENOMEM),
                Some(LeafRef::Delta(d))
                    if !whole && d.unchanged_in(from, to) + d.len() > DELTA_ENTRIES =>
                {
                    return Err(ENOMEM)
                }
                _ => {}
            }
            i += 1;
        }
        let mut i = first;
        while i * LEAF_ENTRIES < end {
            let (from, to) = within(i, lba, end);
            let base = i * LEAF_ENTRIES;
            i += 1;
            if from == 0 && to == LEAF_ENTRIES {
                let inner = &mut *self.0;
                let Some(s) = slot_index(base / LEAF_ENTRIES)
                    .and_then(|k| inner.leaves.get_mut(k))
                    .and_then(Option::take)
                else {
                    continue;
                };
                inner.mapped = inner.mapped.saturating_sub(s.mapped());
                inner.count(&s, -1);
                s.release(&mut dropped);
                // What the leaf read may have differed from what the other
                // side reads now; the other blocks are marked by `set`.
                inner.mark(base, LEAF_ENTRIES);
                continue;
            }
            if self.slot(base).is_none() {
                continue;
            }
            for b in base + from..base + to {
                if let Ok(old) = self.set(b, Entry::Unmapped) {
                    if old != Entry::Unmapped {
                        dropped(old);
                    }
                }
            }
        }
        Ok(())
    }

    /// Calls `f` with every mapped entry of every leaf and delta it reads
    /// (each is one reference to a block), skipping those an earlier call
    /// with the same non-zero `pass` has seen (in this map or another that
    /// shares them), so that each counts once.
    pub(crate) fn for_each_mapped(&mut self, pass: u64, mut f: impl FnMut(Entry)) {
        fn leaf(l: &Leaf, pass: u64, f: &mut impl FnMut(Entry)) {
            if pass != 0 && l.seen.xchg(pass, Relaxed) == pass {
                return;
            }
            for i in 0..LEAF_ENTRIES {
                let v = l.get(i);
                if v != 0 {
                    f(Entry::decode(v));
                }
            }
        }
        for s in self.0.leaves.held() {
            match s {
                LeafRef::Full(l) => leaf(l, pass, &mut f),
                LeafRef::Delta(d) => {
                    if pass == 0 || d.seen.xchg(pass, Relaxed) != pass {
                        for (_, v) in d.changes() {
                            if v != 0 {
                                f(Entry::decode(v));
                            }
                        }
                    }
                    leaf(&d.base, pass, &mut f);
                }
            }
        }
    }

    /// Points block `lba` at `new` only if it still points at `old`; both
    /// are places of the same data, so a shared leaf or delta changes in
    /// place, for every map that reads it.
    pub(crate) fn replace(&mut self, lba: u64, old: Entry, new: Entry) -> bool {
        let (Some(o), Some(n)) = (old.encode(), new.encode()) else {
            return false;
        };
        if o == 0 || n == 0 {
            return false;
        }
        let i = lba % LEAF_ENTRIES;
        let leaf = match self.slot(lba) {
            Some(LeafRef::Delta(d)) if d.bit(i) => {
                return match d.ptrs.get(d.rank(i)) {
                    Some(p) if p.load(Relaxed) == o => {
                        p.store(n, Relaxed);
                        true
                    }
                    _ => false,
                };
            }
            Some(LeafRef::Delta(d)) => &d.base,
            Some(LeafRef::Full(l)) => l,
            None => return false,
        };
        if leaf.get(i) != o {
            return false;
        }
        leaf.put(i, n);
        true
    }
}
