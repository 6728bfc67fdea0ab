// SPDX-License-Identifier: GPL-2.0

//! Member space as the array and free-space collection see it: room,
//! victims, collected stripes, and chunks freed once no read needs them.

use super::State;
use super::Volume;
use super::Writer;
use super::NO_LOC;
use crate::alloc::Pick;
use crate::alloc::Search;
use crate::alloc::StripeInfo;
use crate::format::geometry::MAX_STRIPS;
use crate::format::header::StripeLocation;
use crate::map::Change;
use crate::map::Directory;
use crate::map::Entry;
use crate::reads::Reads;
use kernel::prelude::*;
use kernel::sync::atomic::Relaxed;

/// Chunks a scan of member space looks at under one taking of the
/// writer's lock.
const SCAN_STEP: u32 = 2048;
/// Victim searches before collection gives up on a pool that changes
/// under every one.
const SEARCHES: usize = 3;

impl Writer {
    /// Free blocks on `member`.
    pub(crate) fn free_blocks(&self, member: usize) -> u64 {
        self.state.lock().space.free_blocks(member)
    }

    /// Stops counting the blocks of `vol`, just deleted, as live, except
    /// where copies still point at them.
    pub(crate) fn forget(&self, vol: &Volume) {
        // Detached under the writer's lock, as live counts change only
        // under it; then released a step at a time, so that a large map
        // does not hold the lock throughout.
        let mut gone = {
            let _st = self.state.lock();
            vol.map.detach_all()
        };
        loop {
            let mut st = self.state.lock();
            let newest = st.next_seq - 1;
            let space = &mut st.space;
            let done = gone.release_step(&mut |e| {
                if let Entry::Disk { member, block } = e {
                    space.drop_live(member, block, newest);
                }
            });
            drop(st);
            if done {
                break;
            }
            crate::blk::resched();
        }
        let released = gone.released();
        // Freeing a large directory may sleep: not under the lock.
        drop(released);
    }

    /// Makes blocks `lba .. lba + n` of `vol` writable: allocates their
    /// missing leaves (only when `create`: trims need none) with `flags`,
    /// and gives it its own copy of, or delta over, every leaf it shares
    /// with a copy (blocks read once more or no longer count as such).
    pub(crate) fn prepare(
        &self,
        vol: &Volume,
        lba: u64,
        n: u64,
        create: bool,
        flags: kernel::alloc::Flags,
    ) -> Result {
        vol.map.prepare_each(lba, n, create, flags, |i, leaf| {
            let mut st = self.state.lock();
            let newest = st.next_seq - 1;
            let space = &mut st.space;
            vol.map.lock().install(i, leaf, |c, e| {
                if let Entry::Disk { member, block } = e {
                    match c {
                        Change::Added => {
                            space.add_live(member, block);
                        }
                        Change::Dropped => space.drop_live(member, block, newest),
                    }
                }
            });
        })
    }

    /// Changes the size of `vol`'s map to `blocks` (see [`Map::resize`]).
    pub(crate) fn resize(&self, vol: &Volume, dir: Directory, blocks: u64) -> Result {
        let released = {
            let mut st = self.state.lock();
            let newest = st.next_seq - 1;
            let space = &mut st.space;
            vol.map.resize(dir, blocks, |e| {
                if let Entry::Disk { member, block } = e {
                    space.drop_live(member, block, newest);
                }
            })?
        };
        drop(released);
        Ok(())
    }

    /// Whether free space is down to half of what free-space collection
    /// keeps for itself.
    pub(crate) fn low_on_room(&self) -> bool {
        self.state.lock().space.free_chunks() < self.reserve / 2
    }

    /// Free and total blocks of member space, cheaply.
    pub(crate) fn free_and_total(&self) -> (u64, u64) {
        self.state.lock().space.free_and_total()
    }

    /// Member space totals (a scan of every chunk, a step at a time).
    pub(crate) fn space_stats(&self) -> crate::alloc::SpaceStats {
        let mut s = crate::alloc::SpaceStats::default();
        let mut next = 0;
        while !self
            .state
            .lock()
            .space
            .stats_step(&mut s, &mut next, SCAN_STEP)
        {
            crate::blk::resched();
        }
        s
    }

    /// Whether some emptied stripe waits to be freed.
    pub(crate) fn dying_any(&self) -> bool {
        self.state.lock().space.dying_any()
    }

    /// The stripe free-space collection should empty next, with the places
    /// of its chunks and how many there are.
    /// Stripes from sequence number `below` on are not picked: those a run
    /// wrote itself, so that it ends.
    pub(crate) fn gc_victim(
        &self,
        pick: Pick,
        below: u64,
    ) -> Option<(StripeInfo, [StripeLocation; MAX_STRIPS], usize)> {
        // The pick may change between the steps: searched again if it did,
        // and in one hold of the lock if it did every time.
        for _ in 0..SEARCHES {
            let mut search = Search::default();
            // One age for every step, so that scores compare.
            let mut now = None;
            loop {
                let st = self.state.lock();
                let now = *now.get_or_insert(st.next_seq);
                if !st
                    .space
                    .victim_step(pick, now, below, &mut search, SCAN_STEP)
                {
                    drop(st);
                    crate::blk::resched();
                    continue;
                }
                if let Some(v) = st.space.victim_found(pick, now, below, &search) {
                    return Some(Self::places_of(&st, v));
                }
                break;
            }
            if !search.found_any() {
                return None;
            }
        }
        let st = self.state.lock();
        let v = st.space.victim(pick, st.next_seq, below)?;
        Some(Self::places_of(&st, v))
    }

    /// Victim `v` with the places of its chunks and how many there are.
    fn places_of(st: &State, v: StripeInfo) -> (StripeInfo, [StripeLocation; MAX_STRIPS], usize) {
        let mut places = [NO_LOC; MAX_STRIPS];
        let n = st.space.stripe_places(v.head, &mut places);
        (v, places, n)
    }

    /// Free-space collection moved everything of stripe `v`; returns the
    /// blocks still live in it (none, unless something went wrong).
    pub(crate) fn gc_collected(&self, v: &StripeInfo) -> u32 {
        let mut st = self.state.lock();
        let newest = st.next_seq - 1;
        let left = st.space.collected(v, newest);
        if left == 0 {
            self.stats.collected.add(1, Relaxed);
        }
        left
    }

    /// Free-space collection failed on stripe `v`: never pick it again.
    pub(crate) fn gc_give_up(&self, v: &StripeInfo) {
        self.state.lock().space.give_up(v);
    }

    /// The longest hold of the writer's lock so far, in microseconds, and
    /// where it was taken.
    pub(crate) fn longest_hold(&self) -> (u64, Option<crate::timed::Site>) {
        self.state.longest()
    }

    /// The reads that freed space waits for.
    pub(crate) fn reads(&self) -> &Reads {
        &self.reads
    }

    /// Frees what dead stripes [`Space::reclaim`] lets go of now, and wakes
    /// writers that may be waiting for the room; returns the read epoch it
    /// retired stripes in and the oldest epoch that may still have reads.
    pub(super) fn reclaim_locked(&self, st: &mut State) -> (u64, u64) {
        let (epoch, reads_done) = self.reads.advance();
        if st.space.reclaim(st.durable_seq, epoch, reads_done) > 0 {
            self.changed.notify_all();
        }
        (epoch, reads_done)
    }

    /// Frees dead stripes whose replacements are durable (flushes do that
    /// too) and which no read in flight may still use; returns the blocks
    /// freed since assembly.
    pub(crate) fn reclaim(&self) -> u64 {
        let mut st = self.state.lock();
        self.reclaim_locked(&mut st);
        st.space.freed_total()
    }

    /// As [`Self::reclaim`], but first waits for the reads that keep the
    /// stripes retired so far from being freed (not for those of stripes
    /// retired meanwhile, or a steady load would keep it waiting). Worker
    /// or ioctl context.
    pub(crate) fn reclaim_after_reads(&self) -> u64 {
        let mut st = self.state.lock();
        let (target, mut reads_done) = self.reclaim_locked(&mut st);
        while reads_done <= target && st.space.retired_waiting() {
            drop(st);
            // Reads take a member round trip, rarely more.
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(1));
            st = self.state.lock();
            reads_done = self.reclaim_locked(&mut st).1;
        }
        st.space.freed_total()
    }

    /// A run of free-space collection starts; returns the sequence number
    /// of the next stripe.
    pub(crate) fn gc_started(&self) -> u64 {
        let mut st = self.state.lock();
        st.gc_started += 1;
        st.next_seq
    }

    /// A run of free-space collection ended having freed `freed` blocks:
    /// writers waiting for space try again (or give up if it is 0).
    pub(crate) fn gc_ended(&self, freed: u64) {
        let mut st = self.state.lock();
        st.gc_runs += 1;
        st.gc_freed = freed;
        self.changed.notify_all();
    }

    /// The last stripe written, if every stripe is on stable storage.
    pub(crate) fn log_head(&self) -> Option<(StripeLocation, u64)> {
        let st = self.state.lock();
        let idle = st.inflight.is_empty() && st.open.iter().all(Option::is_none);
        if !idle || st.failed || st.durable_seq < st.prev_seq {
            return None;
        }
        st.prev.map(|p| (p, st.prev_seq))
    }
}
