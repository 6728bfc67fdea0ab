// SPDX-License-Identifier: GPL-2.0

//! After a stripe's batch: map entries moved from the buffer to the
//! members, the buffer freed, the members flushed now and then.

use super::Buffer;
use super::Io;
use super::State;
use super::Volume;
use super::Writer;
use super::BUFFERS;
use super::CHECKPOINT_STRIPES;
use crate::alloc::Space;
use crate::blk::request::Segment;
use crate::format::geometry;
use crate::format::geometry::StripRole;
use crate::map::Entry;
use kernel::prelude::*;
use kernel::sync::atomic::Full;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;

impl Writer {
    /// Finishes the stripes whose batches ended: points their blocks at the
    /// members and frees their buffers. Process context (the worker).
    /// `vols` are the volumes being served.
    ///
    /// Returns false, leaving the rest for another call, when a copy was
    /// made after `vols` was listed with [`Self::copies`] at `copies`: its
    /// map may point into these buffers too.
    pub(crate) fn complete(&self, io: &Io<'_>, vols: &[Arc<Volume>], copies: u64) -> bool {
        let mut mask = self.done.xchg(0, Full);
        for id in 0..BUFFERS {
            if mask & (1u64 << id) == 0 {
                continue;
            }
            let id = id as u16;
            let failed = self
                .status
                .get(usize::from(id))
                .is_none_or(|s| s.load(Relaxed) != 0);
            let Ok(slot) = self.buffer(id) else { continue };
            let mut st = self.state.lock();
            if st.copies != copies {
                drop(st);
                let mut cur = self.done.load(Relaxed);
                while let Err(now) = self.done.cmpxchg(cur, cur | mask, Full) {
                    cur = now;
                }
                return false;
            }
            mask &= !(1u64 << id);
            let slot = slot.lock();
            let seq = slot.seq;
            if failed {
                pr_err!("stripe {}: a member write failed\n", seq);
                st.failed = true;
                st.inflight.retain(|s| *s != seq);
                self.changed.notify_all();
                continue;
            }
            let newest = st.next_seq - 1;
            self.move_to_members(&slot, id, vols, &mut st.space);
            // A reader copies out of the buffer under its own volume's map
            // lock; a leaf shared with a copy changed under another's. Wait
            // for every such reader before the buffer is reused.
            for v in vols {
                drop(v.map.lock());
            }
            st.space.written(slot.head, newest);
            drop(slot);
            st.inflight.retain(|s| *s != seq);
            let _ = st.free.push_within_capacity(id);
            st.since_flush += 1;
            self.changed.notify_all();
        }
        self.checkpoint(io);
        true
    }

    /// How many instant copies were made so far (see [`Self::complete`]
    /// and [`Source::Moved`]).
    pub(crate) fn copies(&self) -> u64 {
        self.state.lock().copies
    }

    /// Every stripe below this sequence number has been written.
    pub(super) fn written_below(&self, st: &State) -> u64 {
        let open = st
            .open
            .iter()
            .zip(st.open_seq.iter())
            .filter_map(|(o, q)| o.map(|_| *q));
        Iterator::chain(st.inflight.iter().copied(), open)
            .min()
            .unwrap_or(st.next_seq)
    }

    /// After [`CHECKPOINT_STRIPES`] stripes written without a flush,
    /// flushes the members so that later headers can vouch for those
    /// stripes: assembly then checks the data of only the stripes written
    /// since, which a power cut may have torn.
    pub(super) fn checkpoint(&self, io: &Io<'_>) {
        let target = {
            let mut st = self.state.lock();
            if st.since_flush < CHECKPOINT_STRIPES || st.failed {
                return;
            }
            st.since_flush = 0;
            self.written_below(&st).saturating_sub(1)
        };
        for m in io.members {
            if m.bdev.flush().is_err() {
                // The next flush request reports it.
                return;
            }
        }
        let mut st = self.state.lock();
        st.durable_seq = st.durable_seq.max(target);
        self.reclaim_locked(&mut st);
    }

    /// Points every block of the written stripe in `slot` that still lives
    /// in its buffer at its place on the members, where it is now live.
    pub(super) fn move_to_members(
        &self,
        slot: &Buffer,
        id: u16,
        vols: &[Arc<Volume>],
        space: &mut Space,
    ) {
        let h = slot.out.header();
        let sb = u64::from(h.strip_blocks);
        for (i, p) in h.pieces_with_strip() {
            let Ok(StripRole::Data(k)) = geometry::strip_role(h, i) else {
                continue;
            };
            let Some(s) = h.strips().get(i) else {
                continue;
            };
            let base = u64::from(k) * sb + u64::from(p.start);
            for vol in h
                .volumes_of(p)
                .filter_map(|id| vols.iter().find(|v| v.id == id))
            {
                let mut m = vol.map.lock();
                for b in 0..u64::from(p.len) {
                    let mem = Entry::Mem {
                        slot: id,
                        offset: (base + b) as u32,
                    };
                    let disk = Entry::Disk {
                        member: s.member,
                        block: s.lba + 1 + u64::from(p.start) + b,
                    };
                    if m.replace(p.host_lba + b, mem, disk) {
                        space.add_live(s.member, s.lba + 1 + u64::from(p.start) + b);
                    }
                }
            }
        }
    }

    /// Copies block bytes of buffer `slot` at byte `off` of its data space
    /// into the read segment `seg`. Call with the volume's map locked, so
    /// that the buffer cannot be reused meanwhile.
    pub(crate) fn read_mem(&self, slot: u16, off: usize, seg: &Segment<'_>) -> bool {
        let Some(buf) = self.data.get(usize::from(slot)) else {
            return false;
        };
        let len = seg.len() as usize;
        buf.with(|d| d.get(off..off + len).is_some_and(|s| seg.copy_from(s)))
    }
}
