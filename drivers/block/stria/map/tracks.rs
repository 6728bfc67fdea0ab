// SPDX-License-Identifier: GPL-2.0

//! Copies sharing this map: leaves shared with a source, and the
//! divergence maps (tracks) that record where a copy and its source part.

use super::dir::Dir;
use super::diverge;
use super::diverge::Divergence;
use super::diverge::Marks;
use super::Form;
use super::Inner;
use super::Map;
use kernel::prelude::*;
use kernel::sync::Arc;

impl Map {
    /// Makes room for one more record in this map's list of those it
    /// marks for its copies, so that [`Self::share_from`] need not
    /// allocate.
    pub(crate) fn reserve_track(&self) -> Result {
        loop {
            let want = {
                let g = self.inner.lock();
                if g.marks.len() < g.marks.capacity() {
                    return Ok(());
                }
                g.marks.len() + 1
            };
            let mut v = KVec::with_capacity(want, GFP_KERNEL)?;
            let mut g = self.inner.lock();
            if g.marks.len() + 1 > v.capacity() {
                continue;
            }
            while let Some(m) = g.marks.pop() {
                if v.push_within_capacity(m).is_err() {
                    return Err(ENOMEM);
                }
            }
            // Back in their order: the newest last.
            v.reverse();
            core::mem::swap(&mut g.marks, &mut v);
        }
    }

    /// The newest record of this map's changes that a copy of `owner`,
    /// this map's volume, of `blocks` blocks taken now could read as its
    /// source's side in `form`.
    pub(crate) fn shareable(
        &self,
        owner: u32,
        blocks: u64,
        form: diverge::Form,
    ) -> Option<Arc<Marks>> {
        let g = self.inner.lock();
        g.marks
            .iter()
            .rev()
            .find(|m| m.read() && m.fits(owner, blocks, form))
            .cloned()
    }

    /// Has this map, the source of `t`, mark `t`'s source side from now on
    /// (if it does not already), in the room [`Self::reserve_track`] made.
    pub(crate) fn add_source(&self, t: &Divergence) -> Result {
        Self::keep_marks(&mut self.inner.lock(), t)
    }

    pub(super) fn keep_marks(g: &mut Inner, t: &Divergence) -> Result {
        let m = t.source_side();
        if g.marks.iter().any(|x| Arc::ptr_eq(x, m)) {
            return Ok(());
        }
        g.marks.push_within_capacity(m.clone()).map_err(|_| ENOMEM)
    }

    /// Has this map, the copy of `t`, mark `t`'s own side from now on.
    pub(crate) fn watch(&self, t: &Arc<Divergence>) {
        let old = self.inner.lock().track.replace(t.clone());
        if let Some(old) = old {
            old.kill();
        }
    }

    /// Forgets the divergence maps whose other side is gone and the
    /// records no copy reads.
    pub(crate) fn prune_tracks(&self) {
        // Only kmalloc'ed memory goes: freeing it does not sleep.
        let mut g = self.inner.lock();
        g.marks.retain(|m| m.read());
        if g.track.as_ref().is_some_and(|t| !t.live()) {
            g.track = None;
        }
    }

    /// The divergence map of copy `copy` and its source `source`, if this
    /// map is that copy's and marks it.
    pub(crate) fn track(&self, copy: u32, source: u32) -> Option<Arc<Divergence>> {
        let g = self.inner.lock();
        g.track
            .as_ref()
            .filter(|t| t.live() && t.copy == copy && t.source == source)
            .cloned()
    }

    /// Points this map, empty and of the same size, at every directory
    /// page of `src`: a copy that costs a pointer per GiB. From then on
    /// both keep `form` where they write into what they share, and mark
    /// `track`, if any, where they change (`src` must have room for its
    /// source side: [`Self::reserve_track`]). Call with the writer's state
    /// lock held.
    pub(crate) fn share_from(
        &self,
        src: &Map,
        form: Form,
        track: Option<&Arc<Divergence>>,
    ) -> Result {
        // The empty directory, filled outside this map's lock: one map
        // lock at a time.
        let mut dir = Dir::new(0)?;
        core::mem::swap(&mut self.inner.lock().leaves, &mut dir);
        let r = {
            let mut s = src.inner.lock();
            // Read from the copy point on: marked from now.
            match track.map_or(Ok(()), |t| Self::keep_marks(&mut s, t)) {
                Ok(()) => s.leaves.share_into(&mut dir).map(|()| {
                    if form == Form::Changed {
                        s.form = form;
                    }
                    (s.mapped, s.nr_leaves, s.nr_deltas)
                }),
                Err(e) => Err(e),
            }
        };
        let mut g = self.inner.lock();
        core::mem::swap(&mut g.leaves, &mut dir);
        let (mapped, nr_leaves, nr_deltas) = r?;
        let old = match track {
            Some(t) => g.track.replace(t.clone()),
            None => g.track.take(),
        };
        g.mapped = mapped;
        g.nr_leaves = nr_leaves;
        g.nr_deltas = nr_deltas;
        g.form = form;
        drop(g);
        if let Some(old) = old {
            old.kill();
        }
        Ok(())
    }
}
