// SPDX-License-Identifier: GPL-2.0

//! Member space and the live blocks of every stripe.
//!
//! Each member's data area is cut into chunks the size of a full strip
//! (its header block included). A strip takes one whole chunk, wherever a
//! free one is, so strips of one stripe lie at unrelated offsets on their
//! members, and a freed stripe leaves whole chunks for any later stripe. A
//! strip a flush closed short wastes the rest of its chunk until
//! free-space collection moves its blocks into a full stripe.
//!
//! The chunks of a stripe are linked in a ring; the first (its *head*)
//! keeps the stripe's sequence number, data capacity and live block count.
//! Every member block counts the map entries pointing at it - volumes and
//! their copies share blocks - and the live count of a stripe is that of
//! its blocks some entry points at: what moving it would cost, however
//! many volumes share them. A stripe with no live blocks left (and
//! no trim records, which must outlive the data they hide) dies: its chunks
//! return to free space once every stripe that could hold what replaced
//! its data is on stable storage, so that a power cut never finds neither
//! the old data nor the new.

use crate::format::geometry::RaidType;
use crate::format::geometry::MAX_STRIPS;
use crate::format::header::StripeLocation;
use core::num::NonZeroU64;
use kernel::prelude::*;

/// No chunk.
const NONE: u32 = u32::MAX;
/// Owner of a chunk some stripe of an older layout overlaps: never freed.
const PINNED: u32 = u32::MAX - 1;
/// Owner of a chunk handed to an open stripe.
const RESERVED: u32 = u32::MAX - 2;

/// Where a stripe is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    /// Closed, its bios not all ended yet.
    Writing,
    /// On the members; its live count is exact.
    Written,
    /// No live blocks; retired once `seq` (here: the newest stripe that
    /// may hold its replacement) is durable.
    Dead,
    /// Durably replaced; free once no read of the epoch `seq` (here: the
    /// epoch it was retired in, see `reads.rs`) or an older one is left.
    Retired,
    /// Collected, yet blocks of it stayed live (a volume deleted meanwhile
    /// or an error): never picked again.
    Stuck,
}

/// How free-space collection ranks stripes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pick {
    /// Most space gained first.
    Greedy,
    /// Space gained, weighted by age over the cost of moving the live
    /// blocks (Rosenblum and Ousterhout's cost-benefit): old, mostly dead
    /// stripes first, sparing young ones whose blocks may die anyway.
    CostBenefit,
}

/// One chunk; the stripe fields are meaningful in a stripe's head only.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    /// Head of the stripe holding it, or [`NONE`], [`PINNED`], [`RESERVED`].
    owner: u32,
    /// Next chunk of the same stripe (a ring).
    link: u32,
    /// Data blocks some map entry points at.
    live: u32,
    /// Data blocks the stripe can hold; for a dead stripe, the next dead
    /// stripe in death order.
    cap: u32,
    /// Sequence number; for a dead stripe, see [`Life::Dead`].
    seq: u64,
    life: Life,
    raid: RaidType,
    /// Whether the stripe holds trim records.
    trims: bool,
    /// Entries of its piece table.
    pieces: u16,
}

impl Chunk {
    const FREE: Chunk = Chunk {
        owner: NONE,
        link: NONE,
        live: 0,
        cap: 0,
        seq: 0,
        life: Life::Written,
        raid: RaidType::Raid0,
        trims: false,
        pieces: 0,
    };
}

/// What a stripe's head records beside its live count.
#[derive(Clone, Copy)]
struct StripeRecord {
    seq: u64,
    cap: u32,
    raid: RaidType,
    trims: bool,
    pieces: u16,
}

/// One member's chunks.
struct Area {
    /// Member block of the first chunk.
    start: u64,
    /// Index of its first chunk in [`Space::chunks`].
    base: u32,
    nr: u32,
    /// Free chunks (member-relative), taken from the end; room for all.
    free: KVVec<u32>,
}

/// A stripe as the free-space collector sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StripeInfo {
    /// Its head chunk.
    pub(crate) head: u32,
    /// Sequence number.
    pub(crate) seq: u64,
}

/// A search for a victim, a step at a time: the next chunk to look at and
/// the best head so far, with its score.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Search {
    next: u32,
    best: Option<(u64, u32)>,
}

impl Search {
    /// Whether the search found a candidate at all.
    pub(crate) fn found_any(&self) -> bool {
        self.best.is_some()
    }
}

/// Totals over all members, in blocks unless said otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SpaceStats {
    /// Blocks of all chunks.
    pub(crate) total: u64,
    /// Blocks of free chunks.
    pub(crate) free: u64,
    /// Data blocks some map entry points at (each once, however many
    /// volumes share it).
    pub(crate) live: u64,
    /// Data blocks the written stripes can hold.
    pub(crate) capacity: u64,
    /// Blocks of dead stripes waiting for a flush to be freed.
    pub(crate) dying: u64,
    /// Blocks of chunks older layouts left that are never freed.
    pub(crate) pinned: u64,
    /// Blocks moving the live blocks of every stripe elsewhere would free.
    pub(crate) reclaimable: u64,
    /// Written stripes by RAID type: 0, 1, 5, 6.
    pub(crate) stripes: [u64; 4],
}

/// Member space and stripe accounting of an array.
pub(crate) struct Space {
    areas: KVec<Area>,
    chunks: KVVec<Chunk>,
    chunk_blocks: NonZeroU64,
    /// Map entries pointing at each block of each chunk, chunk by chunk.
    /// One byte is room for every volume a pool holds; a count that
    /// reached [`u8::MAX`] all the same is never lowered again, so the
    /// block stays live rather than be freed under a volume.
    refs: KVVec<u8>,
    /// Dead and retired stripes, oldest death first (linked through
    /// `cap`): the retired ones first, as stripes are retired in order.
    dead_first: u32,
    dead_last: u32,
    /// The first of them that is not retired yet.
    dead_next: u32,
    /// Member blocks per data block of a full stripe (as a fraction): what
    /// moving a live block costs.
    full_cost: (u64, NonZeroU64),
    /// Pieces a full stripe holds: moving a piece costs at least that
    /// share of the stripe's member blocks, however short it is.
    full_pieces: NonZeroU64,
    /// Blocks [`Self::reclaim`] freed so far.
    freed_total: u64,
}

/// Index of `raid` in [`SpaceStats::stripes`].
fn raid_slot(raid: RaidType) -> usize {
    match raid {
        RaidType::Raid0 => 0,
        RaidType::Raid1 => 1,
        RaidType::Raid5 => 2,
        RaidType::Raid6 => 3,
    }
}

impl Space {
    /// Space over data areas `[start, end)`, one per member, cut into
    /// chunks of `chunk_blocks`; every chunk is in use until
    /// [`Self::finish_claims`].
    pub(crate) fn new(areas: &[(u64, u64)], chunk_blocks: u64) -> Result<Self> {
        let chunk_blocks = NonZeroU64::new(chunk_blocks).ok_or(EINVAL)?;
        let mut v = KVec::with_capacity(areas.len(), GFP_KERNEL)?;
        let mut total = 0u32;
        for &(start, end) in areas {
            let len = end.checked_sub(start).ok_or(EINVAL)?;
            let nr = u32::try_from(len / chunk_blocks).map_err(|_| EINVAL)?;
            v.push(
                Area {
                    start,
                    base: total,
                    nr,
                    free: KVVec::with_capacity(nr as usize, GFP_KERNEL)?,
                },
                GFP_KERNEL,
            )?;
            total = total
                .checked_add(nr)
                .filter(|t| *t < RESERVED)
                .ok_or(EINVAL)?;
        }
        let mut chunks = KVVec::with_capacity(total as usize, GFP_KERNEL)?;
        for _ in 0..total {
            chunks.push(Chunk::FREE, GFP_KERNEL)?;
        }
        let blocks = u64::from(total)
            .checked_mul(chunk_blocks.get())
            .and_then(|b| usize::try_from(b).ok())
            .ok_or(EINVAL)?;
        let refs = KVVec::from_elem(0u8, blocks, GFP_KERNEL)?;
        Ok(Self {
            areas: v,
            chunks,
            chunk_blocks,
            refs,
            dead_first: NONE,
            dead_last: NONE,
            dead_next: NONE,
            full_cost: (1, NonZeroU64::MIN),
            full_pieces: NonZeroU64::MAX,
            freed_total: 0,
        })
    }

    /// Moving a live block costs `member` member blocks per `data` data
    /// blocks (those of a full stripe), and a piece at least `member` per
    /// `pieces`, what a full stripe's piece table holds.
    pub(crate) fn set_full_cost(&mut self, member: u64, data: u64, pieces: u64) {
        if let Some(d) = NonZeroU64::new(data) {
            self.full_cost = (member, d);
        }
        if let Some(p) = NonZeroU64::new(pieces) {
            self.full_pieces = p;
        }
    }

    /// Chunks of stripe `head`: their places into `out`; returns how many.
    pub(crate) fn stripe_places(&self, head: u32, out: &mut [StripeLocation; MAX_STRIPS]) -> usize {
        let (ring, n) = self.ring(head);
        let mut k = 0;
        for g in ring.iter().take(n) {
            if let (Some(p), Some(slot)) = (self.place_of(*g), out.get_mut(k)) {
                *slot = p;
                k += 1;
            }
        }
        k
    }

    /// The chunks of stripe `head`, the head first, and how many.
    fn ring(&self, head: u32) -> ([u32; MAX_STRIPS], usize) {
        let mut ring = [NONE; MAX_STRIPS];
        let mut g = head;
        let mut n = 0;
        for slot in ring.iter_mut() {
            let Some(c) = self.get(g) else { break };
            if c.owner != head {
                break;
            }
            *slot = g;
            n += 1;
            g = c.link;
            if g == head {
                break;
            }
        }
        (ring, n)
    }

    /// Member blocks moving the live blocks of stripe `h` costs, and the
    /// member blocks its chunks take. Its live blocks are in at most as
    /// many pieces as it has live blocks or entries: with large strips,
    /// small pieces fill a stripe's piece table long before its data space.
    fn move_cost(&self, head: u32, h: &Chunk) -> (u64, u64) {
        let n = self.ring(head).1 as u64;
        let (m, d) = self.full_cost;
        let live = u64::from(h.live);
        let pieces = live.min(u64::from(h.pieces));
        (
            (live.saturating_mul(m) / d).max(pieces.saturating_mul(m) / self.full_pieces),
            n * self.chunk_blocks.get(),
        )
    }

    /// The score of chunk `g` as a victim by `pick`, given the newest
    /// sequence number `now`, if it is the head of a written stripe older
    /// than `below` whose chunks hold more than moving its live blocks into
    /// full stripes takes.
    fn score(&self, g: u32, pick: Pick, now: u64, below: u64) -> Option<u64> {
        let c = self.get(g)?;
        if c.owner != g || c.life != Life::Written || c.seq >= below {
            return None;
        }
        let (cost, taken) = self.move_cost(g, c);
        let gain = taken.saturating_sub(cost);
        if gain == 0 && !(c.live == 0 && c.trims) {
            return None;
        }
        Some(match pick {
            Pick::Greedy => gain,
            Pick::CostBenefit => {
                let age = now.saturating_sub(c.seq).saturating_add(1);
                let weighted = gain.saturating_mul(age).saturating_mul(1024);
                NonZeroU64::new(taken.saturating_add(cost)).map_or(0, |d| weighted / d)
            }
        })
    }

    /// Looks at up to `step` more chunks for the stripe free-space
    /// collection should empty next (see [`Self::score`]); returns whether
    /// `search` has now looked at every chunk. The caller may let go of
    /// the writer's lock between steps, so that a search of a large pool
    /// does not hold it throughout.
    pub(crate) fn victim_step(
        &self,
        pick: Pick,
        now: u64,
        below: u64,
        search: &mut Search,
        step: u32,
    ) -> bool {
        let end = (self.chunks.len() as u32).min(search.next.saturating_add(step));
        for g in search.next..end {
            if let Some(score) = self.score(g, pick, now, below) {
                if search.best.is_none_or(|(s, _)| score > s) {
                    search.best = Some((score, g));
                }
            }
        }
        search.next = end;
        end as usize >= self.chunks.len()
    }

    /// The stripe a finished `search` picked, if it is still a candidate:
    /// it may have changed between the steps.
    pub(crate) fn victim_found(
        &self,
        pick: Pick,
        now: u64,
        below: u64,
        search: &Search,
    ) -> Option<StripeInfo> {
        let (_, head) = search.best?;
        self.score(head, pick, now, below)?;
        self.stripe(head)
    }

    /// The stripe free-space collection should empty next by `pick`, in
    /// one search of every chunk.
    pub(crate) fn victim(&self, pick: Pick, now: u64, below: u64) -> Option<StripeInfo> {
        let mut search = Search::default();
        while !self.victim_step(pick, now, below, &mut search, u32::MAX) {}
        self.victim_found(pick, now, below, &search)
    }

    /// Whether stripe `v` is still the written stripe at its head chunk:
    /// collection reads without holding any lock, and meanwhile the stripe
    /// may die, be freed and its chunks go to a new stripe.
    fn still(&self, v: &StripeInfo) -> bool {
        self.get(v.head)
            .is_some_and(|h| h.owner == v.head && h.life == Life::Written && h.seq == v.seq)
    }

    /// Keeps stripe `v` from being picked again.
    pub(crate) fn give_up(&mut self, v: &StripeInfo) {
        if !self.still(v) {
            return;
        }
        if let Some(h) = self.get_mut(v.head) {
            h.life = Life::Stuck;
        }
    }

    /// Stripe `head`, if it is one.
    pub(crate) fn stripe(&self, head: u32) -> Option<StripeInfo> {
        let c = self.get(head)?;
        (c.owner == head).then_some(StripeInfo { head, seq: c.seq })
    }

    /// Free-space collection moved what stripe `v` held (its trim records
    /// included); `newest` as for [`Self::drop_live`]. Returns the blocks
    /// still live in it: none, unless something went wrong.
    pub(crate) fn collected(&mut self, v: &StripeInfo, newest: u64) -> u32 {
        if !self.still(v) {
            return 0;
        }
        let head = v.head;
        let Some(h) = self.get_mut(head) else {
            return 0;
        };
        h.trims = false;
        let live = h.live;
        if live != 0 {
            h.life = Life::Stuck;
            return live;
        }
        self.maybe_dead(head, newest);
        0
    }

    /// Free blocks of `member`.
    pub(crate) fn free_blocks(&self, member: usize) -> u64 {
        self.areas
            .get(member)
            .map_or(0, |a| a.free.len() as u64 * self.chunk_blocks.get())
    }

    /// Free chunks on all members.
    pub(crate) fn free_chunks(&self) -> u64 {
        self.areas.iter().map(|a| a.free.len() as u64).sum()
    }

    /// Free blocks and all blocks of all members' chunks, without a scan.
    pub(crate) fn free_and_total(&self) -> (u64, u64) {
        let cb = self.chunk_blocks.get();
        (self.free_chunks() * cb, self.chunks.len() as u64 * cb)
    }

    /// The chunk holding block `block` of `member`.
    fn chunk_of(&self, member: u8, block: u64) -> Option<u32> {
        let a = self.areas.get(usize::from(member))?;
        let c = block.checked_sub(a.start)? / self.chunk_blocks;
        let c = u32::try_from(c).ok().filter(|c| *c < a.nr)?;
        Some(a.base + c)
    }

    /// The chunk holding block `block` of `member`, and the block's index
    /// in [`Self::refs`].
    fn block_of(&self, member: u8, block: u64) -> Option<(u32, usize)> {
        let g = self.chunk_of(member, block)?;
        let a = self.areas.get(usize::from(member))?;
        let within = block.checked_sub(a.start)? % self.chunk_blocks;
        let i = u64::from(g)
            .checked_mul(self.chunk_blocks.get())?
            .checked_add(within)?;
        Some((g, usize::try_from(i).ok()?))
    }

    /// The reference counts of chunk `g`'s blocks.
    fn chunk_refs(&mut self, g: u32) -> Option<&mut [u8]> {
        let cb = usize::try_from(self.chunk_blocks.get()).ok()?;
        let first = usize::try_from(g).ok()?.checked_mul(cb)?;
        self.refs.get_mut(first..first.checked_add(cb)?)
    }

    /// Member and first block of chunk `g`.
    fn place_of(&self, g: u32) -> Option<StripeLocation> {
        let (m, a) = self
            .areas
            .iter()
            .enumerate()
            .find(|(_, a)| g >= a.base && g - a.base < a.nr)?;
        Some(StripeLocation {
            member: m as u8,
            lba: a.start + u64::from(g - a.base) * self.chunk_blocks.get(),
        })
    }

    fn get(&self, g: u32) -> Option<&Chunk> {
        self.chunks.get(g as usize)
    }

    fn get_mut(&mut self, g: u32) -> Option<&mut Chunk> {
        self.chunks.get_mut(g as usize)
    }

    /// Hands out `width` chunks for strips of `span` blocks on distinct
    /// members of `group` (a member bitmap) into `out`, in member order,
    /// each from the member with the most free chunks. `ENOSPC` when fewer
    /// than `width` members have a free chunk; nothing is taken then.
    pub(crate) fn alloc_strips(
        &mut self,
        group: u32,
        width: usize,
        span: u64,
        out: &mut [StripeLocation; MAX_STRIPS],
    ) -> Result {
        if width == 0 || width > MAX_STRIPS || span == 0 || span > self.chunk_blocks.get() {
            return Err(EINVAL);
        }
        let mut chosen = 0u32;
        for _ in 0..width {
            // The roomiest member not yet chosen; the lowest index on ties.
            let mut best: Option<(usize, usize)> = None;
            for (i, a) in self.areas.iter().enumerate().take(32) {
                let bit = 1u32 << i;
                let free = a.free.len();
                if group & bit == 0 || chosen & bit != 0 || free == 0 {
                    continue;
                }
                if best.is_none_or(|(_, f)| free > f) {
                    best = Some((i, free));
                }
            }
            let (i, _) = best.ok_or(ENOSPC)?;
            chosen |= 1 << i;
        }
        let mut k = 0;
        for i in 0..self.areas.len().min(32) {
            if chosen & (1 << i) == 0 {
                continue;
            }
            let a = self.areas.get_mut(i).ok_or(EINVAL)?;
            let c = a.free.pop().ok_or(EINVAL)?;
            let g = a.base + c;
            let lba = a.start + u64::from(c) * self.chunk_blocks.get();
            if let Some(ch) = self.get_mut(g) {
                ch.owner = RESERVED;
            }
            let slot = out.get_mut(k).ok_or(EINVAL)?;
            *slot = StripeLocation {
                member: i as u8,
                lba,
            };
            k += 1;
        }
        Ok(())
    }

    /// Returns a chunk [`Self::alloc_strips`] handed out and nothing used.
    pub(crate) fn unreserve(&mut self, loc: StripeLocation) {
        let Some(g) = self.chunk_of(loc.member, loc.lba) else {
            return;
        };
        if self.get(g).is_some_and(|c| c.owner == RESERVED) {
            self.release_chunk(g);
        }
    }

    fn release_chunk(&mut self, g: u32) {
        if let Some(c) = self.get_mut(g) {
            *c = Chunk::FREE;
        }
        if let Some(p) = self.place_of(g) {
            if let Some(a) = self.areas.get_mut(usize::from(p.member)) {
                // Room for every chunk was reserved up front.
                let _ = a.free.push_within_capacity(g - a.base);
            }
        }
    }

    /// Links chunks `gs` (the head first) into one stripe in `life`, with
    /// the rest of its record from `info` (`seq`, `cap`, `raid`, `trims`).
    fn link(&mut self, gs: &[u32], life: Life, info: StripeRecord) {
        let Some(&head) = gs.first() else { return };
        for (i, &g) in gs.iter().enumerate() {
            let next = gs.get(i + 1).copied().unwrap_or(head);
            // Whatever pointed at the chunk before is gone: its blocks
            // start unshared.
            if let Some(r) = self.chunk_refs(g) {
                r.fill(0);
            }
            if let Some(c) = self.get_mut(g) {
                *c = Chunk {
                    owner: head,
                    link: next,
                    live: 0,
                    cap: info.cap,
                    seq: info.seq,
                    life,
                    raid: info.raid,
                    trims: info.trims,
                    pieces: info.pieces,
                };
            }
        }
    }

    /// Makes the reserved chunks at `locs` (strip 0 first) a stripe being
    /// written: `seq`, `cap` data blocks, `raid`, with or without trim
    /// records, `pieces` piece table entries. Returns its head.
    pub(crate) fn seal(
        &mut self,
        locs: &[StripeLocation],
        seq: u64,
        cap: u32,
        raid: RaidType,
        trims: bool,
        pieces: u16,
    ) -> Result<u32> {
        let mut gs = [NONE; MAX_STRIPS];
        for (g, l) in gs.iter_mut().zip(locs.iter()) {
            let c = self.chunk_of(l.member, l.lba).ok_or(EINVAL)?;
            if self.get(c).is_none_or(|c| c.owner != RESERVED) {
                return Err(EINVAL);
            }
            *g = c;
        }
        let gs = gs.get(..locs.len()).ok_or(EINVAL)?;
        let info = StripeRecord {
            seq,
            cap,
            raid,
            trims,
            pieces,
        };
        self.link(gs, Life::Writing, info);
        gs.first().copied().ok_or(EINVAL)
    }

    /// Stripe `head` is on the members; `newest` is the newest stripe
    /// sequence number handed out so far.
    pub(crate) fn written(&mut self, head: u32, newest: u64) {
        let Some(c) = self.get_mut(head) else { return };
        if c.owner != head || c.life != Life::Writing {
            return;
        }
        c.life = Life::Written;
        self.maybe_dead(head, newest);
    }

    /// The head of the stripe holding block `block` of `member`, and the
    /// block's index in [`Self::refs`]; `None` if no stripe holds it.
    fn stripe_block(&self, member: u8, block: u64) -> Option<(u32, usize)> {
        let (g, i) = self.block_of(member, block)?;
        let head = self.get(g)?.owner;
        self.get(head)?;
        Some((head, i))
    }

    /// A map entry now points at block `block` of `member`. Returns whether
    /// a stripe holds that block (a map entry anywhere else is stale).
    pub(crate) fn add_live(&mut self, member: u8, block: u64) -> bool {
        let Some((head, i)) = self.stripe_block(member, block) else {
            return false;
        };
        let Some(r) = self.refs.get_mut(i) else {
            return false;
        };
        let first = *r == 0;
        *r = r.saturating_add(1);
        if first {
            if let Some(h) = self.get_mut(head) {
                h.live = h.live.saturating_add(1);
            }
        }
        true
    }

    /// A map entry no longer points at block `block` of `member`; `newest`
    /// is the newest stripe sequence number handed out so far (the newest
    /// stripe that may hold what replaced the block).
    pub(crate) fn drop_live(&mut self, member: u8, block: u64, newest: u64) {
        let Some((head, i)) = self.stripe_block(member, block) else {
            return;
        };
        let Some(r) = self.refs.get_mut(i) else {
            return;
        };
        // Nothing to drop, or shared by more than can be counted.
        if *r == 0 || *r == u8::MAX {
            return;
        }
        *r -= 1;
        if *r != 0 {
            return;
        }
        let Some(h) = self.get_mut(head) else { return };
        h.live = h.live.saturating_sub(1);
        self.maybe_dead(head, newest);
    }

    /// Puts `head` on the dead list if nothing in it is needed any more.
    fn maybe_dead(&mut self, head: u32, newest: u64) {
        let Some(h) = self.get_mut(head) else { return };
        // A stuck stripe too: collection found blocks of it live that only
        // a volume being deleted pointed at, and the deletion has now let go
        // of them (it does so a step at a time).
        if h.owner != head
            || !matches!(h.life, Life::Written | Life::Stuck)
            || h.live != 0
            || h.trims
        {
            return;
        }
        h.life = Life::Dead;
        h.seq = newest;
        h.cap = NONE;
        let last = self.dead_last;
        self.dead_last = head;
        match self.get_mut(last) {
            Some(l) => l.cap = head,
            None => self.dead_first = head,
        }
        if self.dead_next == NONE {
            self.dead_next = head;
        }
    }

    /// Retires, in read epoch `epoch`, the dead stripes whose replacements
    /// are durable (`durable` and below), and frees the chunks of those
    /// retired in an epoch below `reads_done`, the oldest epoch that may
    /// still have reads in flight. Returns the blocks freed.
    pub(crate) fn reclaim(&mut self, durable: u64, epoch: u64, reads_done: u64) -> u64 {
        while let Some(h) = self.get_mut(self.dead_next) {
            if h.life != Life::Dead || h.seq > durable {
                break;
            }
            h.life = Life::Retired;
            h.seq = epoch;
            self.dead_next = h.cap;
        }
        let mut freed = 0u64;
        while let Some(h) = self.get(self.dead_first).copied() {
            if h.life != Life::Retired || h.seq >= reads_done {
                break;
            }
            let head = self.dead_first;
            self.dead_first = h.cap;
            if self.dead_first == NONE {
                self.dead_last = NONE;
            }
            freed += self.free_stripe(head);
        }
        self.freed_total += freed;
        freed
    }

    /// Whether a retired stripe waits for reads before it can be freed.
    pub(crate) fn retired_waiting(&self) -> bool {
        self.get(self.dead_first)
            .is_some_and(|h| h.life == Life::Retired)
    }

    /// Blocks freed since assembly.
    pub(crate) fn freed_total(&self) -> u64 {
        self.freed_total
    }

    /// Returns every chunk of stripe `head` to free space.
    fn free_stripe(&mut self, head: u32) -> u64 {
        let (ring, n) = self.ring(head);
        for g in ring.iter().take(n) {
            self.release_chunk(*g);
        }
        n as u64 * self.chunk_blocks.get()
    }

    /// Records a stripe found on the members at assembly: strips `locs`
    /// (strip 0 first) of `span` blocks, and the rest as for
    /// [`Self::seal`]. Call newest first: a stripe on the chunk grid that
    /// names a chunk a newer stripe holds was freed before and its chunk
    /// reused, so it is not recorded. Strips off the grid or larger than a
    /// chunk (an older layout) pin the chunks they touch, and any stripe
    /// holding one, for good rather than risk freeing live data.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn claim(
        &mut self,
        locs: &[StripeLocation],
        span: u64,
        seq: u64,
        cap: u32,
        raid: RaidType,
        trims: bool,
        pieces: u16,
    ) -> Result {
        let mut gs = [NONE; MAX_STRIPS];
        let mut fits = span <= self.chunk_blocks.get();
        let mut reused = false;
        for (g, l) in gs.iter_mut().zip(locs.iter()) {
            let a = self.areas.get(usize::from(l.member)).ok_or(EINVAL)?;
            let aligned = l.lba >= a.start && (l.lba - a.start) % self.chunk_blocks == 0;
            let c = self.chunk_of(l.member, l.lba).filter(|_| aligned);
            match c.and_then(|c| self.get(c).map(|ch| (c, ch.owner))) {
                Some((c, NONE)) => *g = c,
                Some((_, PINNED | RESERVED)) | None => fits = false,
                Some(_) => reused = true,
            }
        }
        let gs = gs.get(..locs.len()).ok_or(EINVAL)?;
        let distinct = gs
            .iter()
            .enumerate()
            .all(|(i, g)| *g == NONE || !gs.iter().take(i).any(|h| h == g));
        if fits && reused {
            return Ok(());
        }
        if fits && distinct {
            let info = StripeRecord {
                seq,
                cap,
                raid,
                trims,
                pieces,
            };
            self.link(gs, Life::Written, info);
            return Ok(());
        }
        for l in locs {
            let mut b = l.lba;
            while b < l.lba.saturating_add(span) {
                if let Some(g) = self.chunk_of(l.member, b) {
                    let old = self.get(g).map_or(NONE, |c| c.owner);
                    if old != NONE && old != PINNED {
                        self.pin_stripe(old);
                    }
                    if let Some(c) = self.get_mut(g) {
                        *c = Chunk {
                            owner: PINNED,
                            ..Chunk::FREE
                        };
                    }
                }
                b = (b / self.chunk_blocks + 1) * self.chunk_blocks.get();
            }
        }
        Ok(())
    }

    /// Pins every chunk of stripe `head`.
    fn pin_stripe(&mut self, head: u32) {
        let (ring, n) = self.ring(head);
        for g in ring.iter().take(n) {
            if let Some(x) = self.get_mut(*g) {
                *x = Chunk {
                    owner: PINNED,
                    ..Chunk::FREE
                };
            }
        }
    }

    /// Ends assembly: every chunk no stripe claimed is free, and stripes
    /// without live blocks are dead; `newest` is the newest stripe found.
    pub(crate) fn finish_claims(&mut self, newest: u64) {
        for i in 0..self.areas.len() {
            let Some((base, nr)) = self.areas.get(i).map(|a| (a.base, a.nr)) else {
                continue;
            };
            // The lowest chunks are handed out first.
            for c in (0..nr).rev() {
                if self.get(base + c).is_some_and(|ch| ch.owner == NONE) {
                    if let Some(a) = self.areas.get_mut(i) {
                        let _ = a.free.push_within_capacity(c);
                    }
                }
            }
        }
        for g in 0..self.chunks.len() as u32 {
            if self.get(g).is_some_and(|c| c.owner == g) {
                self.maybe_dead(g, newest);
            }
        }
    }

    /// Adds the totals of up to `step` more chunks, from `*next` on, to
    /// `s`; returns whether every chunk is counted. As for
    /// [`Self::victim_step`], the caller may let go of the lock between
    /// steps: the totals then mix moments, as a df of a busy filesystem.
    pub(crate) fn stats_step(&self, s: &mut SpaceStats, next: &mut u32, step: u32) -> bool {
        let cb = self.chunk_blocks.get();
        let end = (self.chunks.len() as u32).min(next.saturating_add(step));
        for g in *next..end {
            let Some(c) = self.get(g) else { break };
            s.total += cb;
            match c.owner {
                NONE => s.free += cb,
                PINNED => s.pinned += cb,
                RESERVED => {}
                head => {
                    let Some(h) = self.get(head) else { continue };
                    let dying = matches!(h.life, Life::Dead | Life::Retired);
                    if dying {
                        s.dying += cb;
                    }
                    if head == g && !dying {
                        let (cost, taken) = self.move_cost(head, h);
                        s.reclaimable += taken.saturating_sub(cost);
                        s.live += u64::from(h.live);
                        s.capacity += u64::from(h.cap);
                        if let Some(n) = s.stripes.get_mut(raid_slot(h.raid)) {
                            *n += 1;
                        }
                    }
                }
            }
        }
        *next = end;
        end as usize >= self.chunks.len()
    }

    /// Totals, in one pass over every chunk.
    pub(crate) fn stats(&self) -> SpaceStats {
        let mut s = SpaceStats::default();
        let mut next = 0;
        while !self.stats_step(&mut s, &mut next, u32::MAX) {}
        s
    }

    /// Whether some stripe is dead or retired, waiting to be freed.
    pub(crate) fn dying_any(&self) -> bool {
        self.dead_first != NONE
    }
}

// A failed assertion is the test failing; the tables under test are built
// here, not read from a member.
#[allow(clippy::indexing_slicing, clippy::panic)]
#[kernel::prelude::kunit_tests(stria_alloc)]
mod tests {
    use super::*;

    const NONE_LOC: StripeLocation = StripeLocation { member: 0, lba: 0 };

    /// Four members of ten chunks of 17 blocks from block 256 on, one of
    /// them with twenty.
    fn space() -> Result<Space> {
        let mut s = Space::new(&[(256, 426), (256, 426), (256, 426), (256, 596)], 17)?;
        s.finish_claims(0);
        Ok(s)
    }

    #[test]
    fn strips_on_distinct_roomiest_members() -> Result {
        let mut s = space()?;
        let mut out = [NONE_LOC; MAX_STRIPS];
        s.alloc_strips(0b1111, 3, 17, &mut out)?;
        // Member 3 is the roomiest; then members 0 and 1 (lowest index),
        // each at its lowest chunk.
        let want = [(0, 256), (1, 256), (3, 256)];
        for (o, (m, l)) in out.iter().zip(want) {
            assert_eq!((o.member, o.lba), (m, l));
        }
        s.alloc_strips(0b1111, 3, 17, &mut out)?;
        // Member 2 now has the most room after member 3.
        let got: [u8; 3] = [out[0].member, out[1].member, out[2].member];
        assert_eq!(got, [0, 2, 3]);
        assert_eq!(out[2].lba, 256 + 17);
        assert_eq!(s.free_blocks(3), 18 * 17);
        assert_eq!(s.free_blocks(1), 9 * 17);
        // A strip larger than a chunk cannot be placed.
        assert_eq!(s.alloc_strips(0b1111, 2, 18, &mut out).err(), Some(EINVAL));
        Ok(())
    }

    #[test]
    fn group_mask_and_enospc() -> Result {
        let mut s = Space::new(&[(0, 34), (0, 34), (0, 1700)], 17)?;
        s.finish_claims(0);
        let mut out = [NONE_LOC; MAX_STRIPS];
        // Only members 0 and 1 belong to the group.
        s.alloc_strips(0b011, 2, 17, &mut out)?;
        s.alloc_strips(0b011, 2, 5, &mut out)?;
        assert_eq!(s.free_blocks(2), 1700);
        // The group is full, and the failed attempt takes nothing.
        assert_eq!(s.alloc_strips(0b011, 2, 1, &mut out).err(), Some(ENOSPC));
        assert_eq!(s.alloc_strips(0b111, 3, 1, &mut out).err(), Some(ENOSPC));
        assert_eq!(s.free_blocks(2), 1700);
        // A chunk given back unused is handed out again.
        s.unreserve(out[1]);
        s.alloc_strips(0b010, 1, 17, &mut out)?;
        assert_eq!(s.free_blocks(1), 0);
        Ok(())
    }

    /// Allocates and seals a stripe of `width` strips in `s`.
    fn stripe(s: &mut Space, width: usize, seq: u64, trims: bool) -> Result<(u32, StripeLocation)> {
        let mut out = [NONE_LOC; MAX_STRIPS];
        s.alloc_strips(0b1111, width, 17, &mut out)?;
        let head = s.seal(
            &out[..width],
            seq,
            16 * (width as u32 - 1),
            RaidType::Raid5,
            trims,
            0,
        )?;
        Ok((head, out[0]))
    }

    #[test]
    fn shared_blocks_count_once() -> Result {
        let mut s = space()?;
        s.set_full_cost(4 * 17, 48, 160);
        let (head, _) = stripe(&mut s, 4, 1, false)?;
        // Data block `b` of the stripe, 16 to a chunk.
        let at = |s: &Space, b: u64| {
            let mut p = [NONE_LOC; MAX_STRIPS];
            s.stripe_places(head, &mut p);
            let c = p[(b / 16) as usize];
            (c.member, c.lba + 1 + b % 16)
        };
        // Half the stripe live, each block in 30 volumes' maps.
        for b in 0..24 {
            for _ in 0..30 {
                let (m, l) = at(&s, b);
                assert!(s.add_live(m, l));
            }
        }
        s.written(head, 1);
        assert_eq!(s.stats().live, 24);
        // Half dead is worth collecting, however many share the rest.
        assert_eq!(s.victim(Pick::Greedy, 10, 10).map(|v| v.head), Some(head));
        // A block lives until the last volume lets go of it.
        for _ in 0..29 {
            let (m, l) = at(&s, 0);
            s.drop_live(m, l, 5);
        }
        assert_eq!(s.stats().live, 24);
        let (m, l) = at(&s, 0);
        s.drop_live(m, l, 5);
        assert_eq!(s.stats().live, 23);
        // Dropping what nothing points at changes nothing.
        let (m, l) = at(&s, 0);
        s.drop_live(m, l, 5);
        assert_eq!(s.stats().live, 23);
        // A count at its ceiling never comes down: the block stays live.
        for _ in 0..300 {
            let (m, l) = at(&s, 30);
            s.add_live(m, l);
        }
        for _ in 0..300 {
            let (m, l) = at(&s, 30);
            s.drop_live(m, l, 5);
        }
        assert_eq!(s.stats().live, 24);
        for b in 1..24 {
            for _ in 0..30 {
                let (m, l) = at(&s, b);
                s.drop_live(m, l, 5);
            }
        }
        assert_eq!(s.stats().live, 1);
        assert_eq!(s.stats().dying, 0);
        Ok(())
    }

    #[test]
    fn dead_stripes_wait_for_durability() -> Result {
        let mut s = space()?;
        let (head, at) = stripe(&mut s, 3, 1, false)?;
        let full = s.stats().free;
        for b in 0..4 {
            s.add_live(at.member, at.lba + 1 + b);
        }
        // Live blocks only count once the stripe is written.
        s.written(head, 1);
        assert_eq!(s.stats().live, 4);
        assert_eq!(s.stats().stripes, [0, 0, 1, 0]);
        for b in 0..3 {
            s.drop_live(at.member, at.lba + 1 + b, 5);
        }
        assert_eq!(s.reclaim(10, 1, 2), 0);
        s.drop_live(at.member, at.lba + 4, 5);
        // Its replacements may lie in stripes up to 5: not before that is
        // durable.
        assert_eq!(s.stats().dying, 3 * 17);
        assert_eq!(s.reclaim(4, 1, 2), 0);
        // Retired in read epoch 3: reads of epoch 3 may still use it.
        assert_eq!(s.reclaim(5, 3, 3), 0);
        assert_eq!(s.stats().dying, 3 * 17);
        assert_eq!(s.reclaim(5, 4, 4), 3 * 17);
        assert_eq!(s.stats().free, full + 3 * 17);
        assert_eq!(s.stats().stripes, [0, 0, 0, 0]);
        Ok(())
    }

    #[test]
    fn trims_and_pinned_chunks_stay() -> Result {
        let mut s = space()?;
        // Trim records must outlive the data they hide: no live blocks,
        // yet the stripe stays.
        let (head, _) = stripe(&mut s, 2, 1, true)?;
        s.written(head, 1);
        assert_eq!(s.reclaim(100, 1, 2), 0);
        assert_eq!(s.stats().stripes, [0, 0, 1, 0]);

        // At assembly: an aligned stripe is tracked; one off the chunk
        // grid (an older layout) pins what it touches; an older stripe
        // naming a chunk a newer one holds was freed before and is not.
        let mut t = Space::new(&[(0, 170), (0, 170)], 17)?;
        let a = [
            StripeLocation { member: 0, lba: 0 },
            StripeLocation { member: 1, lba: 17 },
        ];
        t.claim(&a, 17, 9, 16, RaidType::Raid1, false, 1)?;
        let old = [
            StripeLocation { member: 0, lba: 0 },
            StripeLocation { member: 1, lba: 34 },
        ];
        t.claim(&old, 17, 3, 16, RaidType::Raid1, false, 1)?;
        let odd = [StripeLocation { member: 0, lba: 40 }];
        t.claim(&odd, 17, 2, 16, RaidType::Raid0, false, 1)?;
        t.add_live(0, 1);
        t.finish_claims(9);
        let st = t.stats();
        assert_eq!(st.stripes, [0, 1, 0, 0]);
        assert_eq!(st.live, 1);
        // Chunks 2 and 3 of member 0 are pinned.
        assert_eq!(st.pinned, 2 * 17);
        assert_eq!(st.free, (20 - 2 - 2) * 17);
        Ok(())
    }

    #[test]
    fn victims_by_gain_and_age() -> Result {
        let mut s = space()?;
        s.set_full_cost(4 * 17, 48, 160);
        // Blocks `b` of a stripe, 16 data blocks per chunk.
        let block = |s: &Space, head, b: u64| {
            let mut p = [NONE_LOC; MAX_STRIPS];
            s.stripe_places(head, &mut p);
            let c = p[(b / 16) as usize];
            (c.member, c.lba + 1 + b % 16)
        };
        let live = |s: &mut Space, width, seq, n: u64| -> Result<u32> {
            let (head, _) = stripe(s, width, seq, false)?;
            for b in 0..n {
                let (m, l) = block(s, head, b);
                s.add_live(m, l);
            }
            s.written(head, seq);
            Ok(head)
        };
        // Full and wholly live: nothing to gain, never a victim.
        live(&mut s, 4, 1, 48)?;
        assert_eq!(s.victim(Pick::Greedy, 100, 100), None);
        // Old and 60% live, young and 40% live.
        let old = live(&mut s, 4, 1, 29)?;
        let young = live(&mut s, 4, 90, 19)?;
        let head = |v: Option<StripeInfo>| v.map(|v| v.head);
        assert_eq!(head(s.victim(Pick::Greedy, 100, 100)), Some(young));
        assert_eq!(head(s.victim(Pick::CostBenefit, 100, 100)), Some(old));
        // A search one chunk at a time, and the totals, find the same.
        let whole = s.stats();
        for (pick, want) in [(Pick::Greedy, young), (Pick::CostBenefit, old)] {
            let mut search = Search::default();
            let mut steps = 0;
            while !s.victim_step(pick, 100, 100, &mut search, 1) {
                steps += 1;
            }
            assert_eq!(steps + 1, s.chunks.len());
            assert_eq!(head(s.victim_found(pick, 100, 100, &search)), Some(want));
        }
        let (mut t, mut next) = (SpaceStats::default(), 0);
        while !s.stats_step(&mut t, &mut next, 3) {}
        assert_eq!(t, whole);
        // A pick that stopped being a candidate meanwhile is not returned.
        let mut search = Search::default();
        while !s.victim_step(Pick::Greedy, 100, 100, &mut search, 7) {}
        let y = s.stripe(young).ok_or(EINVAL)?;
        s.give_up(&y);
        assert_eq!(s.victim_found(Pick::Greedy, 100, 100, &search), None);
        assert!(search.found_any());
        s.get_mut(young).ok_or(EINVAL)?.life = Life::Written;
        // Collected: it dies once its blocks are gone, and is not picked
        // again; a stripe left with live blocks is never picked again.
        for b in 0..29 {
            let (m, l) = block(&s, old, b);
            s.drop_live(m, l, 100);
        }
        let info = |s: &Space, head| s.stripe(head).ok_or(EINVAL);
        let (o, y) = (info(&s, old)?, info(&s, young)?);
        // Not once the stripe at that chunk is another one.
        let other = StripeInfo {
            seq: o.seq + 1,
            ..o
        };
        assert_eq!(s.collected(&other, 100), 0);
        assert_eq!(s.collected(&o, 100), 0);
        assert_eq!(s.collected(&y, 100), 19);
        // Stuck, until what still pointed at its blocks lets go of them
        // (a volume deleted a step at a time): then it dies.
        let dying = s.stats().dying;
        for b in 0..19 {
            let (m, l) = block(&s, young, b);
            s.drop_live(m, l, 100);
        }
        assert_eq!(s.stats().dying, dying + 4 * 17);
        assert_eq!(s.victim(Pick::CostBenefit, 100, 100), None);
        // A small mirrored stripe with one live block is worth collecting.
        let small = live(&mut s, 2, 95, 1)?;
        assert_eq!(head(s.victim(Pick::Greedy, 100, 100)), Some(small));
        Ok(())
    }
}
