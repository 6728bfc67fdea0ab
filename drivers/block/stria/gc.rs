// SPDX-License-Identifier: GPL-2.0

//! Free-space collection.
//!
//! Overwrites, discards and deleted volumes leave dead blocks in written
//! stripes; a stripe whose blocks are all dead is freed by itself (see
//! `alloc.rs`), but one with a few live blocks left holds all its chunks.
//! Collection picks such stripes (`Space::victim`), reads their header and
//! data back, and packs the blocks that are still live — those the map
//! still points at — through the normal write path, with their volume and
//! block numbers, into the open stripe (so small mirrored stripes written
//! by flushes end up in full parity stripes). Trim records are packed again
//! where their range is still unmapped, since they must outlive any older
//! copy of the data they hide. The emptied stripe then dies, and its chunks
//! are freed once the stripes now holding its blocks are on stable storage.
//!
//! It runs in the background when free space falls below [`LOW_PERCENT`]
//! of the pool, until it is back above [`HIGH_PERCENT`]; when host writes
//! find no space they wait for a run, and fail with `ENOSPC` only if the
//! run freed nothing. `STRIA_IOC_GC` runs it on demand.

// Sizes and offsets here come from members or from user space.
#![deny(clippy::arithmetic_side_effects)]

use crate::alloc::Pick;
use crate::alloc::StripeInfo;
use crate::format::geometry;
use crate::format::geometry::block_offset;
use crate::format::geometry::StripRole;
use crate::format::geometry::BLOCK_SIZE;
use crate::format::header::Piece;
use crate::format::header::StripeHeader;
use crate::format::header::StripeLocation;
use crate::format::uuid::Uuid;
use crate::members::Member;
use crate::writer::Io;
use crate::writer::Owner;
use crate::writer::Source;
use crate::writer::Volume;
use crate::writer::Writer;
use kernel::prelude::*;
use kernel::sync::Arc;

/// Below this share of the pool free, collection starts by itself.
pub(crate) const LOW_PERCENT: u64 = 10;
/// Background collection stops once this share of the pool is free.
pub(crate) const HIGH_PERCENT: u64 = 15;
/// Stripes collected between member flushes that free what they emptied.
const FLUSH_EVERY: u32 = 16;
/// Stripes a background run empties before it lets host writes have room.
const BACKGROUND_BUDGET: u64 = 64;

/// What a run did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Outcome {
    /// Stripes emptied.
    pub(crate) stripes: u64,
    /// Member blocks freed.
    pub(crate) freed: u64,
}

/// What collection needs of the array whose space it frees: the array
/// implements it, so that collection does not depend on the array's
/// table, workers and devices.
pub(crate) trait Pool: Owner {
    /// The writer that packs moved blocks and frees emptied stripes.
    fn writer(&self) -> &Writer;
    /// The members and bio set to read and write through.
    fn io(&self) -> Io<'_>;
    /// Whether the array is being stopped: collection then ends early.
    fn stopping(&self) -> bool;
    /// The array's UUID, which every stripe header read back must carry.
    fn uuid(&self) -> Uuid;
    /// Member `i`.
    fn member(&self, i: u8) -> Option<&Member>;
    /// The volume and copies still in service of the first of `ids` the
    /// array knows (empty if none): the family a piece moves for.
    fn family_any(&self, ids: impl Iterator<Item = u32>) -> Result<KVec<Arc<Volume>>>;
}

/// Free blocks `percent` of the pool's `total` blocks stand for.
pub(crate) fn share(total: u64, percent: u64) -> u64 {
    (total / 100).saturating_mul(percent)
}

/// Collects stripes of `array`, ranked by `pick`, until `target` blocks
/// are free or nothing is worth collecting. Worker or ioctl context: it
/// reads members and waits for stripes to be written.
/// A run in the background stops after `budget` stripes once there is
/// room again (it is started again as stripes complete), so that host
/// writes get their turn.
pub(crate) fn run<P: Pool>(
    array: &Arc<P>,
    target: u64,
    pick: Pick,
    budget: Option<u64>,
) -> Result<Outcome> {
    let w = array.writer();
    let io = array.io();
    // Stripes the run writes itself are not collected again by it.
    let below = w.gc_started();
    let before = w.reclaim();
    let mut out = Outcome::default();
    let mut since_flush = 0u32;
    let mut flushed_for_room = false;
    loop {
        let (free, _) = w.free_and_total();
        if free >= target || array.stopping() {
            break;
        }
        let victim = w.gc_victim(pick, below);
        // Emptied stripes are freed once the stripes now holding their
        // blocks are durable: make the full ones so every so often, and
        // whenever the room to move blocks to runs short. Writing the open
        // stripe part full costs whole chunks - as much as a victim frees -
        // so that is only done when there is no room left at all, or
        // nothing else to collect.
        let wake = victim.is_none() || since_flush >= FLUSH_EVERY || w.low_on_room();
        if wake && w.dying_any() {
            since_flush = 0;
            let had = w.reclaim();
            w.sync_closed(&io)?;
            let mut now = w.reclaim();
            if now == had && victim.is_none() {
                w.flush(array, &io)?;
                now = w.reclaim();
            }
            out.freed = now.saturating_sub(before);
            if now > had {
                continue;
            }
        }
        if budget.is_some_and(|b| out.stripes >= b) && !w.low_on_room() {
            break;
        }
        let Some((v, places, n)) = victim else { break };
        let places = places.get(..n).ok_or(EINVAL)?;
        match collect(array, &v, places) {
            Ok(()) => flushed_for_room = false,
            Err(e) if e == ENOSPC => {
                // Out of room to move blocks to, with nothing left to
                // free by a flush: one more flush (the open stripe may
                // hold the last moves), then give up for this run.
                if flushed_for_room {
                    break;
                }
                flushed_for_room = true;
                w.flush(array, &io)?;
                out.freed = w.reclaim().saturating_sub(before);
                continue;
            }
            Err(e) => {
                // Never picked again; the next stripe may do better.
                w.gc_give_up(&v);
                pr_err!(
                    "stripe {}: cannot collect it: error {}\n",
                    v.seq,
                    e.to_errno()
                );
                continue;
            }
        }
        out.stripes = out.stripes.saturating_add(1);
        since_flush = since_flush.saturating_add(1);
        out.freed = w.reclaim().saturating_sub(before);
    }
    // What this run emptied is freed before it ends: writers waiting for
    // room take a run that freed nothing for a full pool.
    if w.dying_any() {
        w.sync_closed(&io)?;
        if w.reclaim() == before {
            w.flush(array, &io)?;
        }
    }
    // Also what reads in flight still kept.
    out.freed = w.reclaim_after_reads().saturating_sub(before);
    Ok(out)
}

/// Runs collection in the background until [`HIGH_PERCENT`] is free, and
/// tells waiting writers how it went.
pub(crate) fn background<P: Pool>(array: &Arc<P>) {
    let w = array.writer();
    let target = share(w.free_and_total().1, HIGH_PERCENT);
    let freed = match run(array, target, Pick::CostBenefit, Some(BACKGROUND_BUDGET)) {
        Ok(o) => o.freed,
        Err(e) => {
            pr_err!("free-space collection failed: error {}\n", e.to_errno());
            0
        }
    };
    w.gc_ended(freed);
}

/// Whether the pool `w` writes to is low enough on free space for
/// collection to start (checked as stripes complete, so without a scan).
pub(crate) fn wanted(w: &Writer) -> bool {
    let (free, total) = w.free_and_total();
    free < share(total, LOW_PERCENT)
}

/// Reads a header copy of stripe `v` from one of `places` into `hdr`.
fn read_header<P: Pool>(
    array: &P,
    v: &StripeInfo,
    places: &[StripeLocation],
    hdr: &mut StripeHeader,
) -> Result {
    let uuid = array.uuid();
    let mut buf = KVec::new();
    for p in places {
        let Some(m) = array.member(p.member) else {
            continue;
        };
        buf.resize(BLOCK_SIZE, 0, GFP_KERNEL)?;
        let Some(at) = block_offset(p.lba) else {
            continue;
        };
        if m.bdev.read_at(at, &mut buf).is_err() {
            continue;
        }
        let ok = hdr
            .decode_into(&buf)
            .and_then(|()| hdr.check_array(&uuid))
            .and_then(|()| hdr.check_areas(|i| array.member(i).map(|m| m.area())))
            .and_then(|()| hdr.check_location(p.member, p.lba))
            .is_ok();
        if ok && hdr.seq == v.seq {
            return Ok(());
        }
    }
    pr_err!("stripe {}: no readable header copy\n", v.seq);
    Err(EIO)
}

/// Size in blocks of the largest volume of `family`.
fn reach(family: &[Arc<Volume>]) -> u64 {
    family
        .iter()
        .map(|v| v.map.size_blocks())
        .max()
        .unwrap_or(0)
}

/// Blocks of a strip read at once by collection.
const WINDOW_BLOCKS: u32 = 256;

/// Moves the blocks of piece `p` of strip `i` of `h` that lie in blocks
/// `win .. end` of the strip, whose data is `data`.
fn move_part<P: Pool>(
    array: &Arc<P>,
    h: &StripeHeader,
    i: usize,
    p: &Piece,
    win: u32,
    end: u32,
    data: &[u8],
) -> Result {
    let Ok(Some(run)) = geometry::piece_run(h, i, p) else {
        return Ok(());
    };
    let w = array.writer();
    let io = array.io();
    // Both 16-bit: the sums cannot overflow, and `from` is at least both
    // `win` and the piece's start.
    let from = u32::from(p.start).max(win);
    let to = u32::from(p.start).saturating_add(u32::from(p.len)).min(end);
    let skip = u64::from(from.saturating_sub(u32::from(p.start)));
    let offset = usize::try_from(from.saturating_sub(win))
        .ok()
        .and_then(|b| b.checked_mul(BLOCK_SIZE))
        .ok_or(EINVAL)?;
    let bytes = data.get(offset..).ok_or(EINVAL)?;
    let host = p.host_lba.checked_add(skip).ok_or(EINVAL)?;
    let block = run.lba.checked_add(skip).ok_or(EINVAL)?;
    // Whoever of the piece's copy tree still points at its blocks gets
    // them moved: looked up again if a copy is made meanwhile.
    loop {
        let copies = w.copies();
        let family = array.family_any(h.volumes_of(p))?;
        let Some(vol) = family.first() else {
            return Ok(());
        };
        let n = u64::from(to.saturating_sub(from)).min(reach(&family).saturating_sub(host));
        if n == 0 {
            return Ok(());
        }
        let src = Source::Moved {
            data: bytes,
            member: run.member,
            block,
            family: &family,
            copies,
        };
        match w.write(array, &io, vol, host, n, 0, src, true) {
            Err(e) if e == EAGAIN => continue,
            r => return r.map(|_| ()),
        }
    }
}

/// Moves what is live in stripe `v`, whose chunks are at `places`.
fn collect<P: Pool>(array: &Arc<P>, v: &StripeInfo, places: &[StripeLocation]) -> Result {
    let w = array.writer();
    let io = array.io();
    let mut hdr = KBox::new(StripeHeader::EMPTY, GFP_KERNEL)?;
    read_header::<P>(array, v, places, &mut hdr)?;
    let h = &*hdr;
    let mut data = KVec::new();
    for i in 0..usize::from(h.nr_strips) {
        if !matches!(geometry::strip_role(h, i), Ok(StripRole::Data(_))) {
            continue;
        }
        let s = h.strips().get(i).ok_or(EINVAL)?;
        let m = array.member(s.member).ok_or(EINVAL)?;
        let first = geometry::strip_data_lba(s).map_err(|_| EINVAL)?;
        // A window of the strip at a time: a strip may be larger than one
        // allocation can be. Windows no piece reaches are not read.
        let mut win = 0u32;
        while win < h.strip_blocks {
            let end = win.saturating_add(WINDOW_BLOCKS).min(h.strip_blocks);
            let in_window = |p: &Piece| {
                !p.is_trim()
                    && u32::from(p.start) < end
                    && win < u32::from(p.start).saturating_add(u32::from(p.len))
            };
            if h.pieces_with_strip().any(|(at, p)| at == i && in_window(p)) {
                let len = usize::try_from(end.saturating_sub(win))
                    .ok()
                    .and_then(|b| b.checked_mul(BLOCK_SIZE))
                    .ok_or(EINVAL)?;
                data.resize(len, 0, GFP_KERNEL)?;
                let at = first
                    .checked_add(u64::from(win))
                    .and_then(block_offset)
                    .ok_or(EINVAL)?;
                m.bdev.read_at(at, &mut data)?;
                for (_, p) in h
                    .pieces_with_strip()
                    .filter(|(at, p)| *at == i && in_window(p))
                {
                    move_part(array, h, i, p, win, end, &data)?;
                }
            }
            win = end;
        }
    }
    for (_, p) in h.pieces_with_strip().filter(|(_, p)| p.is_trim()) {
        loop {
            let copies = w.copies();
            let family = array.family_any(h.volumes_of(p))?;
            let Some(vol) = family.first() else {
                break;
            };
            let n = u64::from(p.host_len).min(reach(&family).saturating_sub(p.host_lba));
            if n == 0 {
                break;
            }
            let src = Source::Retrim {
                family: &family,
                copies,
            };
            match w.write(array, &io, vol, p.host_lba, n, 0, src, true) {
                Err(e) if e == EAGAIN => continue,
                r => break r.map(|_| ())?,
            }
        }
    }
    let left = w.gc_collected(v);
    if left > 0 {
        pr_warn!(
            "stripe {}: {} blocks still live after collection; left alone\n",
            v.seq,
            left
        );
    }
    Ok(())
}
