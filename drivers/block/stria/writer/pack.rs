// SPDX-License-Identifier: GPL-2.0

//! Packing: ranges copied into the open stripe of their group, stripes
//! opened over allocated strips and closed when full.

use super::plan;
use super::sort_by_room;
use super::source::family_ids;
use super::source::family_mask;
use super::Io;
use super::Owner;
use super::Policy;
use super::Source;
use super::State;
use super::Volume;
use super::Writer;
use super::MAX_FAMILY;
use super::NO_LOC;
use crate::alloc::Space;
use crate::format::error::FormatError;
use crate::format::geometry;
use crate::format::geometry::MAX_STRIPS;
use crate::format::header::Appended;
use crate::format::header::StripeParams;
use crate::map::Entry;
use crate::timed::TimedGuard;
use kernel::prelude::*;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;

/// Whose map entries [`Writer::fill`] points at the blocks it placed.
pub(super) enum Fill<'a> {
    /// The volume's own: a host write.
    Host,
    /// Those of the volumes `who` of `family` that still point at the
    /// blocks' old place, from `block` on `member` on.
    Move {
        family: &'a [Arc<Volume>],
        who: u64,
        member: u8,
        block: u64,
    },
}

/// The first run of blocks from `done` up to `n` that `mask` gives one
/// non-zero value: the blocks before it, its length, and the value.
fn same_run(done: u64, n: u64, mask: impl Fn(u64) -> u64) -> (u64, u64, u64) {
    let skip = (done..n).take_while(|&i| mask(i) == 0).count() as u64;
    let start = done + skip;
    let first = if start < n { mask(start) } else { 0 };
    let want = (start..n).take_while(|&i| mask(i) == first).count() as u64;
    (skip, want, first)
}

impl Writer {
    /// Packs blocks `lba + from .. lba + n` of `vol` into the open stripe
    /// of the volume's group, as `src` says; full stripes are written on
    /// the way. Returns how far it got: all `n` blocks, or fewer when no
    /// stripe buffer is free and `wait` is false.
    ///
    /// Without `wait` (in `queue_rq`) it never sleeps: stripes it fills are
    /// left to the owner's worker ([`Owner::stripes_ready`]). Host data
    /// leaves the last chunks of member space to free-space collection and
    /// trims.
    ///
    /// Moved blocks are checked against the map under the same lock that
    /// orders host writes into the log, so a host write of a block is
    /// either packed before the check (the block no longer moves) or after
    /// the move (and is newer in the log too).
    ///
    /// `vol.map` must have been prepared for the range.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write<T: Owner>(
        &self,
        owner: &Arc<T>,
        io: &Io<'_>,
        vol: &Volume,
        lba: u64,
        n: u64,
        from: u64,
        src: Source<'_>,
        wait: bool,
    ) -> Result<u64> {
        let g = vol.group;
        let pol = self.policies.get(g).ok_or(EINVAL)?;
        let mut done = from;
        let mut gave_up = false;
        // The last stripe could not be opened for want of a member chunk.
        let mut member_full = false;
        while done < n {
            let mut st = self.state.lock();
            if st.failed {
                return Err(EIO);
            }
            // Volumes of the family a collected range moves for.
            let mut who = 0u64;
            // A copy made since the family was looked up would be missed.
            if let Source::Moved { copies, .. } | Source::Retrim { copies, .. } = &src {
                if *copies != st.copies {
                    return Err(EAGAIN);
                }
            }
            // How many blocks from `done` on to pack; those before that to
            // skip (already changed since the stripe was read).
            let (skip, want) = match &src {
                Source::Host(_) | Source::Trim => (0, n - done),
                Source::Moved {
                    member,
                    block,
                    family,
                    ..
                } => {
                    let at = |i: u64| Entry::Disk {
                        member: *member,
                        block: block + i,
                    };
                    let (skip, want, first) =
                        same_run(done, n, |i| family_mask(family, lba + i, at(i)));
                    who = first;
                    (skip, want)
                }
                Source::Retrim { family, .. } => {
                    let (skip, want, first) =
                        same_run(done, n, |i| family_mask(family, lba + i, Entry::Unmapped));
                    who = first;
                    (skip, want)
                }
            };
            done += skip;
            if want == 0 {
                continue;
            }
            // Host data stays out of the chunks kept for collection, also
            // when a stripe is open: collection may have opened it there.
            let room = pol.width as u64 + self.reserve;
            if src.spares_reserve() && (member_full || st.space.free_chunks() < room) {
                // In `queue_rq`, a worker takes over; there, it waits for
                // collection to make room, unless a run that knew of the
                // need freed nothing.
                if !wait {
                    return Ok(done);
                }
                if gave_up {
                    return Err(ENOSPC);
                }
                let run = st.gc_started + 1;
                T::need_space(owner);
                while st.gc_runs < run
                    && !st.failed
                    && (member_full || st.space.free_chunks() < room)
                {
                    st.wait(&self.changed);
                }
                // One more try even so: space may have come back otherwise.
                gave_up = st.gc_runs >= run && st.gc_freed == 0;
                member_full = false;
                continue;
            }
            let id = match st.open.get(g).copied().flatten() {
                Some(id) => id,
                None => {
                    let Some(id) = st.free.pop() else {
                        if !wait {
                            return Ok(done);
                        }
                        // Waiting drops the lock: someone else may open a
                        // stripe for the group meanwhile, so look again.
                        st.wait(&self.changed);
                        if st.failed {
                            return Err(EIO);
                        }
                        continue;
                    };
                    if let Err(e) = self.open(&mut st, id, g, pol, src.spares_reserve()) {
                        let _ = st.free.push_within_capacity(id);
                        if e != ENOSPC {
                            return Err(e);
                        }
                        // Out of space, in all or on one member: host
                        // data waits for collection (in `queue_rq`, a
                        // worker takes over to wait).
                        if !src.spares_reserve() {
                            return Err(ENOSPC);
                        }
                        if !wait {
                            return Ok(done);
                        }
                        member_full = true;
                        continue;
                    }
                    id
                }
            };
            let mut slot = self.buffer(id)?.lock();
            let placed = match &src {
                Source::Host(_) => slot.nominal.append(vol.id, lba + done, want),
                Source::Moved { family, .. } => {
                    let (first, also, k) = family_ids(family, who);
                    let also = also.get(..k).unwrap_or(&[]);
                    slot.nominal.append_for(first, also, lba + done, want)
                }
                Source::Trim => slot
                    .nominal
                    .append_trim(vol.id, lba + done, want)
                    .map(|blocks| Appended {
                        data_offset: 0,
                        blocks,
                    }),
                Source::Retrim { family, .. } => {
                    let (first, also, k) = family_ids(family, who);
                    let also = also.get(..k).unwrap_or(&[]);
                    slot.nominal
                        .append_trim_for(first, also, lba + done, want)
                        .map(|blocks| Appended {
                            data_offset: 0,
                            blocks,
                        })
                }
            };
            let placed = match placed {
                Ok(a) => a,
                Err(FormatError::DoesNotFit) => {
                    // Full in a way `free_blocks` could not tell: close it.
                    drop(slot);
                    self.close_full(owner, io, st, g, wait)?;
                    continue;
                }
                Err(e) => {
                    pr_err!("cannot place a host piece: {}\n", e.as_str());
                    return Err(EIO);
                }
            };
            let newest = st.next_seq - 1;
            match &src {
                Source::Host(_) | Source::Moved { .. } => {
                    let copy = |off: usize, dst: &mut [u8]| match &src {
                        Source::Host(fan) => fan.copy_out(off, dst),
                        Source::Moved { data, .. } => data
                            .get(off..off + dst.len())
                            .map(|s| dst.copy_from_slice(s))
                            .is_some(),
                        Source::Trim | Source::Retrim { .. } => false,
                    };
                    let space = &mut st.space;
                    let to = match &src {
                        Source::Moved {
                            member,
                            block,
                            family,
                            ..
                        } => Fill::Move {
                            family,
                            who,
                            member: *member,
                            block: block + done,
                        },
                        _ => Fill::Host,
                    };
                    self.fill(vol, id, lba + done, done, placed, copy, space, newest, to)?;
                    let counter = match src {
                        Source::Host(_) => &self.stats.host_blocks,
                        _ => &self.stats.moved_blocks,
                    };
                    counter.add(placed.blocks, Relaxed);
                }
                Source::Trim => {
                    let space = &mut st.space;
                    vol.map.lock().unmap(lba + done, placed.blocks, |old| {
                        if let Entry::Disk { member, block } = old {
                            space.drop_live(member, block, newest);
                        }
                    })?;
                }
                // The range is unmapped already where the record is kept.
                Source::Retrim { .. } => {}
            }
            done += placed.blocks;
            // The slots kept for splits at closing are all that is left.
            let full =
                slot.nominal.free_blocks() == 0 || slot.nominal.free_pieces() <= pol.data_strips();
            drop(slot);
            if full {
                self.close_full(owner, io, st, g, wait)?;
            }
        }
        Ok(done)
    }

    /// Closes group `g`'s open stripe, which is full, and writes it now
    /// (`wait`) or has the owner's worker write it.
    pub(super) fn close_full<T: Owner>(
        &self,
        owner: &Arc<T>,
        io: &Io<'_>,
        mut st: TimedGuard<'_, State>,
        g: usize,
        wait: bool,
    ) -> Result {
        let Some(id) = self.take_open(&mut st, g, false)? else {
            return Ok(());
        };
        if wait {
            drop(st);
            self.close(owner, io, id);
            return Ok(());
        }
        // Room for every buffer: a buffer is on the list at most once.
        st.ready.push_within_capacity(id).map_err(|_| EINVAL)?;
        drop(st);
        T::stripes_ready(owner);
        Ok(())
    }

    /// Writes the stripes closed inside `queue_rq`, oldest first. Process
    /// context (the owner's worker).
    pub(crate) fn write_ready<T: Owner>(&self, owner: &Arc<T>, io: &Io<'_>) {
        loop {
            let id = {
                let mut st = self.state.lock();
                if st.ready.is_empty() {
                    return;
                }
                match st.ready.remove(0) {
                    Ok(id) => id,
                    Err(_) => return,
                }
            };
            self.close(owner, io, id);
        }
    }

    /// Copies the data of the blocks just placed into buffer `id` with
    /// `copy` (from a byte offset of the source into a slice) and points
    /// the map at them; `done` is their first block's index in the source.
    /// The member blocks they replace stop being live in `space`; `newest`
    /// is the newest stripe handed out, this one or a later one.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fill(
        &self,
        vol: &Volume,
        id: u16,
        lba: u64,
        done: u64,
        placed: Appended,
        copy: impl FnOnce(usize, &mut [u8]) -> bool,
        space: &mut Space,
        newest: u64,
        to: Fill<'_>,
    ) -> Result {
        let off = geometry::blocks_to_bytes(placed.data_offset).map_err(|_| EIO)?;
        let len = geometry::blocks_to_bytes(placed.blocks).map_err(|_| EIO)?;
        let src = geometry::blocks_to_bytes(done).map_err(|_| EIO)?;
        let buf = self.data.get(usize::from(id)).ok_or(EIO)?;
        let copied = buf.with(|d| d.get_mut(off..off + len).is_some_and(|dst| copy(src, dst)));
        if let (
            true,
            Fill::Move {
                family,
                who,
                member,
                block,
            },
        ) = (copied, &to)
        {
            // Moved blocks change place for every map that points at
            // them; a leaf shared by several changes once.
            for (j, v) in family.iter().enumerate().take(MAX_FAMILY) {
                if who & (1 << j) == 0 {
                    continue;
                }
                let mut m = v.map.lock();
                for i in 0..placed.blocks {
                    let old = Entry::Disk {
                        member: *member,
                        block: block + i,
                    };
                    let mem = Entry::Mem {
                        slot: id,
                        offset: (placed.data_offset + i) as u32,
                    };
                    if m.replace(lba + i, old, mem) {
                        space.drop_live(*member, block + i, newest);
                    }
                }
            }
            return Ok(());
        }
        {
            let mut m = vol.map.lock();
            for i in 0..placed.blocks {
                let e = if copied {
                    Entry::Mem {
                        slot: id,
                        offset: (placed.data_offset + i) as u32,
                    }
                } else {
                    Entry::Unmapped
                };
                if let Entry::Disk { member, block } = m.set(lba + i, e)? {
                    space.drop_live(member, block, newest);
                }
            }
        }
        if !copied {
            // The piece is in the header already; its blocks now hold
            // zeros rather than stale bytes, and the host gets an error.
            buf.with(|d| {
                if let Some(dst) = d.get_mut(off..off + len) {
                    dst.fill(0);
                }
            });
            pr_err!("write request shorter than its length\n");
            return Err(EIO);
        }
        Ok(())
    }

    /// Opens stripe buffer `id` for group `g`: allocates a full stripe's
    /// strips and starts its header.
    pub(super) fn open(
        &self,
        st: &mut State,
        id: u16,
        g: usize,
        pol: &Policy,
        host: bool,
    ) -> Result {
        // A second open stripe would be lost to flushes and never written.
        if st.open.get(g).copied().flatten().is_some() {
            pr_err!("group {}: a stripe is open already\n", g);
            return Err(EINVAL);
        }
        let mut locs = [NO_LOC; MAX_STRIPS];
        // The last chunks are free-space collection's: it needs room to
        // move live blocks to before it can free anything.
        if host && st.space.free_chunks() < pol.width as u64 + self.reserve {
            return Err(ENOSPC);
        }
        st.space
            .alloc_strips(pol.members, pol.width, pol.span(), &mut locs)?;
        let seq = st.next_seq;
        let (parity_index, q_index) = geometry::default_parity(pol.raid, pol.width, seq);
        let params = StripeParams {
            array_uuid: self.uuid,
            seq,
            timestamp: 0,
            prev: None,
            raid_type: pol.raid,
            group: pol.group,
            strip_blocks: pol.strip_blocks,
            parity_index,
            q_index,
            durable_seq: 0,
        };
        let mut slot = self.buffer(id)?.lock();
        let started = match locs.get(..pol.width) {
            Some(l) => slot.nominal.reset(&params, l),
            None => Err(FormatError::BadStripCount),
        };
        if let Err(e) = started {
            pr_err!("cannot start a stripe: {}\n", e.as_str());
            for l in locs.iter().take(pol.width) {
                st.space.unreserve(*l);
            }
            return Err(EIO);
        }
        // Closing may split pieces at new strip boundaries, a slot each.
        slot.nominal.keep_free(pol.data_strips());
        slot.locs = locs;
        slot.group = g;
        slot.seq = seq;
        slot.plan = None;
        st.next_seq += 1;
        if let (Some(o), Some(q)) = (st.open.get_mut(g), st.open_seq.get_mut(g)) {
            *o = Some(id);
            *q = seq;
        }
        Ok(())
    }

    /// Takes group `g`'s open stripe out for writing: decides its shape,
    /// gives back the chunks it will not use, makes the others a stripe in
    /// `space`, and counts it in flight.
    /// Returns the buffer to write, or `None` (nothing open, or nothing in
    /// it: then the buffer is free again).
    pub(super) fn take_open(
        &self,
        st: &mut State,
        g: usize,
        by_flush: bool,
    ) -> Result<Option<u16>> {
        let Some(id) = st.open.get_mut(g).and_then(Option::take) else {
            return Ok(None);
        };
        let pol = self.policies.get(g).ok_or(EINVAL)?;
        let mut slot = self.buffer(id)?.lock();
        // A stripe of trim records only still needs a data block to exist.
        let used = match slot.nominal.used_blocks() {
            0 if !slot.nominal.is_empty() => 1,
            u => u,
        };
        let plan = plan(pol, used);
        let nr = plan.map_or(0, |p| p.nr_strips);
        if nr < pol.width {
            // A narrower stripe keeps the strips on the roomiest members:
            // always keeping the first ones would drain the low-numbered
            // members under fsync-heavy loads while the others stay empty.
            let seq = slot.seq;
            let locs = slot.locs.get_mut(..pol.width).ok_or(EINVAL)?;
            sort_by_room(locs, &st.space, seq);
        }
        for l in slot.locs.iter().take(pol.width).skip(nr) {
            st.space.unreserve(*l);
        }
        if let Some(p) = plan {
            let trims = slot.nominal.header().pieces().any(|p| p.is_trim());
            let cap = u32::try_from(p.nr_data)
                .ok()
                .and_then(|n| n.checked_mul(p.strip_blocks))
                .ok_or(EINVAL)?;
            let locs = slot.locs.get(..nr).ok_or(EINVAL)?;
            let pieces = slot.nominal.header().nr_pieces;
            slot.head = st.space.seal(locs, slot.seq, cap, p.raid, trims, pieces)?;
        }
        slot.plan = plan;
        slot.by_flush = by_flush;
        if plan.is_none() {
            drop(slot);
            st.free.push_within_capacity(id).map_err(|_| EINVAL)?;
            self.changed.notify_all();
            return Ok(None);
        }
        slot.durable_seq = st.durable_seq;
        slot.prev = st.prev;
        st.prev = slot.locs.first().copied();
        st.prev_seq = slot.seq;
        st.inflight
            .push_within_capacity(slot.seq)
            .map_err(|_| EINVAL)?;
        Ok(Some(id))
    }
}
