// SPDX-License-Identifier: GPL-2.0

//! The log-structured writer.
//!
//! Host writes are copied into the open stripe of their volume's group as
//! host pieces and acknowledged at once: the volume has a volatile write
//! cache, like a disk. A stripe is closed when its data space or piece
//! table is full, or when a flush or FUA write needs it on the members;
//! then its parity, data checksums and header are computed in memory and
//! every strip is written whole, header first, in one batch — never a
//! read-modify-write. A stripe closed part full is written narrower (fewer
//! or shorter strips, or mirrored), whichever takes least space.
//!
//! Until its batch ends, a block's map entry points into the stripe's
//! memory, so reads find it there; the worker then moves the entries to
//! the members (unless a later write moved them again) and frees the
//! buffer. A flush completes once every stripe closed before it has been
//! written and every member has flushed its cache.

use crate::alloc::Pick;
use crate::alloc::Space;
use crate::alloc::StripeInfo;
use crate::blk::bio::BioSet;
use crate::blk::iobuf::Batch;
use crate::blk::iobuf::BatchDone;
use crate::blk::iobuf::IoBuf;
use crate::blk::request::Fanout;
use crate::blk::request::Segment;
use crate::blk::Status;
use crate::format::crc;
use crate::format::error::FormatError;
use crate::format::geometry;
use crate::format::geometry::RaidType;
use crate::format::geometry::StripRole;
use crate::format::geometry::BLOCK_SIZE;
use crate::format::geometry::MAX_STRIPS;
use crate::format::header::Appended;
use crate::format::header::HeaderBuilder;
use crate::format::header::StripeLocation;
use crate::format::header::StripeParams;
use crate::format::header::MAX_GROUPS;
use crate::format::header::MAX_PIECES;
use crate::format::parity;
use crate::format::superblock::StripeGroup;
use crate::format::uuid::Uuid;
use crate::map::Change;
use crate::map::Directory;
use crate::map::Entry;
use crate::map::Map;
use crate::members::Member;
use crate::reads::Reads;
use kernel::new_condvar;
use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Full;
use kernel::sync::atomic::Relaxed;
use kernel::sync::lock::spinlock::SpinLockBackend;
use kernel::sync::lock::Guard;
use kernel::sync::Arc;
use kernel::sync::CondVar;
use kernel::sync::SpinLock;

/// Stripe buffers: stripes being filled or written at once.
pub(crate) const SLOTS: usize = 8;

/// Bytes per block.
const BLOCK: usize = BLOCK_SIZE;

/// Stripes written between two flushes of the members by the writer itself.
const CHECKPOINT_STRIPES: u32 = 32;

/// Where nothing was allocated.
const NO_LOC: StripeLocation = StripeLocation { member: 0, lba: 0 };

/// How new stripes of one group are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Group number, recorded in headers.
    pub(crate) group: u8,
    /// Member bitmap.
    pub(crate) members: u32,
    /// RAID type of full stripes.
    pub(crate) raid: RaidType,
    /// Strips of a full stripe, parity included.
    pub(crate) width: usize,
    /// Data blocks per strip of a full stripe.
    pub(crate) strip_blocks: u32,
}

impl Policy {
    /// The policy of group `index` as the superblock records it.
    pub(crate) fn from_group(index: u8, g: &StripeGroup, nr_members: usize) -> Result<Self> {
        let width = usize::from(g.width);
        let in_array = if nr_members >= 32 {
            u32::MAX
        } else {
            (1u32 << nr_members) - 1
        };
        let ok = width >= g.raid_type.min_strips()
            && width <= MAX_STRIPS
            && g.members & !in_array == 0
            && g.members.count_ones() as usize >= width
            && g.strip_blocks > 0
            && g.strip_blocks <= geometry::MAX_STRIP_BLOCKS;
        if !ok {
            return Err(EINVAL);
        }
        Ok(Self {
            group: index,
            members: g.members,
            raid: g.raid_type,
            width,
            strip_blocks: g.strip_blocks,
        })
    }

    /// Data strips of a full stripe.
    pub(crate) fn data_strips(&self) -> usize {
        match self.raid {
            RaidType::Raid1 => 1,
            r => self.width - r.parity_strips(),
        }
    }

    /// Data blocks of a full stripe.
    pub(crate) fn data_blocks(&self) -> u64 {
        self.data_strips() as u64 * u64::from(self.strip_blocks)
    }

    /// Member blocks one strip of a full stripe takes, header included.
    fn span(&self) -> u64 {
        u64::from(self.strip_blocks) + 1
    }
}

/// The shape a stripe is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Protection.
    pub(crate) raid: RaidType,
    /// Data strips.
    pub(crate) nr_data: usize,
    /// Strips, parity and mirrors included.
    pub(crate) nr_strips: usize,
    /// Data blocks per strip.
    pub(crate) strip_blocks: u32,
}

impl Plan {
    /// Member blocks the stripe takes.
    pub(crate) fn cost(&self) -> u64 {
        self.nr_strips as u64 * (u64::from(self.strip_blocks) + 1)
    }
}

/// Orders the strips `locs` of a stripe being closed by the free space of
/// their members, roomiest first, so that a narrower shape keeps those.
/// Ties go round by `seq`, so that equal members take turns.
pub(crate) fn sort_by_room(locs: &mut [StripeLocation], space: &Space, seq: u64) {
    let n = (locs.len() as u64).max(1);
    let key = |l: &StripeLocation| {
        let turn = (u64::from(l.member) + n - seq % n) % n;
        (
            core::cmp::Reverse(space.free_blocks(usize::from(l.member))),
            turn,
        )
    };
    // At most MAX_STRIPS entries: an insertion sort, without recursion.
    for i in 1..locs.len() {
        let mut j = i;
        while j > 0 {
            let (Some(a), Some(b)) = (locs.get(j - 1), locs.get(j)) else {
                break;
            };
            if key(a) <= key(b) {
                break;
            }
            locs.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// The cheapest shape for a stripe of `p` holding `used` data blocks with
/// the redundancy of a full one: a full stripe when full; otherwise fewer
/// or shorter strips, or as many mirrored copies as the parity protects.
/// Strips never outgrow the group's, which is what was allocated.
pub(crate) fn plan(p: &Policy, used: u64) -> Option<Plan> {
    if used == 0 || used > p.data_blocks() {
        return None;
    }
    let sb = u64::from(p.strip_blocks);
    if p.raid == RaidType::Raid1 {
        return Some(Plan {
            raid: RaidType::Raid1,
            nr_data: 1,
            nr_strips: p.width,
            strip_blocks: u32::try_from(used).ok()?,
        });
    }
    let par = p.raid.parity_strips();
    let min_data = p.raid.min_strips().saturating_sub(par).max(1);
    let mut best: Option<Plan> = None;
    let mut consider = |c: Plan| {
        if best.is_none_or(|b| c.cost() < b.cost()) {
            best = Some(c);
        }
    };
    for k in min_data..=p.data_strips() {
        let per = used.div_ceil(k as u64);
        if per > sb {
            continue;
        }
        consider(Plan {
            raid: p.raid,
            nr_data: k,
            nr_strips: k + par,
            strip_blocks: u32::try_from(per).ok()?,
        });
    }
    // Parity protects against `par` lost members; so do `par + 1` copies.
    if par > 0 && used <= sb && par < p.width {
        consider(Plan {
            raid: RaidType::Raid1,
            nr_data: 1,
            nr_strips: par + 1,
            strip_blocks: u32::try_from(used).ok()?,
        });
    }
    best
}

/// A stripe buffer's bookkeeping.
struct Slot {
    /// The stripe as filled, laid out as a full stripe of its group.
    nominal: KBox<HeaderBuilder>,
    /// The stripe as written.
    out: KBox<HeaderBuilder>,
    /// Strips allocated when the stripe was opened.
    locs: [StripeLocation; MAX_STRIPS],
    group: usize,
    seq: u64,
    durable_seq: u64,
    prev: Option<StripeLocation>,
    plan: Option<Plan>,
    /// Closed by a flush rather than by filling up.
    by_flush: bool,
    /// Head chunk of the stripe once closed (see [`Space::seal`]).
    head: u32,
}

/// Writer state shared by all groups.
struct State {
    /// Buffers neither open nor being written.
    free: KVec<u16>,
    /// The open stripe of each group.
    open: [Option<u16>; MAX_GROUPS],
    /// Sequence numbers of stripes closed but not yet written.
    inflight: KVec<u64>,
    /// Buffers closed inside `queue_rq`, oldest first, for the stripe
    /// worker to write.
    ready: KVec<u16>,
    next_seq: u64,
    /// Instant copies made so far: a family of volumes looked up before a
    /// copy misses the copy.
    copies: u64,
    /// Every stripe at or below it is on stable storage.
    durable_seq: u64,
    /// Header location and sequence number of the last stripe closed.
    prev: Option<StripeLocation>,
    prev_seq: u64,
    /// Sequence number of each group's open stripe.
    open_seq: [u64; MAX_GROUPS],
    /// Stripes written since the members were last flushed.
    since_flush: u32,
    space: Space,
    /// A stripe could not be written: flushes fail from now on.
    failed: bool,
    /// Runs of free-space collection started and ended, and the blocks the
    /// last one freed.
    gc_started: u64,
    gc_runs: u64,
    gc_freed: u64,
}

/// Writer counters.
pub(crate) struct WriterStats {
    /// Stripes written.
    pub(crate) stripes: Atomic<u64>,
    /// Stripes a flush closed before they were full.
    pub(crate) partial: Atomic<u64>,
    /// Host blocks packed.
    pub(crate) host_blocks: Atomic<u64>,
    /// Member blocks written, headers and parity included.
    pub(crate) member_blocks: Atomic<u64>,
    /// Blocks moved by free-space collection.
    pub(crate) moved_blocks: Atomic<u64>,
    /// Stripes free-space collection emptied.
    pub(crate) collected: Atomic<u64>,
}

/// Who a writer works for: hears of ended batches, and runs
/// [`Writer::write_ready`] when asked.
pub(crate) trait Owner: BatchDone {
    /// Stripes were closed where they could not be written: have a worker
    /// call [`Writer::write_ready`].
    fn stripes_ready(this: &Arc<Self>);

    /// Host writes ran out of member space: have free-space collection
    /// run, which ends with [`Writer::gc_ended`].
    fn need_space(this: &Arc<Self>);
}

/// What a range packed by [`Writer::write`] carries.
pub(crate) enum Source<'a, O: crate::blk::disk::Operations> {
    /// Host data, the range's first block at the request's first byte.
    Host(&'a Fanout<O>),
    /// A discard or write-zeroes: trim records.
    Trim,
    /// Blocks of a stripe being collected, the range's first at `data`'s
    /// first byte: each moves for every volume of `family` whose map entry
    /// still points at `block` (plus its index) on `member`.
    Moved {
        /// The blocks' data.
        data: &'a [u8],
        /// Member they are on.
        member: u8,
        /// Member block of the first.
        block: u64,
        /// The volume and its copies (at most [`MAX_FAMILY`]), as they
        /// were when [`Writer::copies`] said `copies`.
        family: &'a [Arc<Volume>],
        /// See `family`.
        copies: u64,
    },
    /// Trim records of a stripe being collected: kept for the volumes of
    /// `family` where the range is still unmapped.
    Retrim {
        /// The volume and its copies (at most [`MAX_FAMILY`]), as they
        /// were when [`Writer::copies`] said `copies`.
        family: &'a [Arc<Volume>],
        /// See `family`.
        copies: u64,
    },
}

/// Volumes of one copy tree in service at most: every volume the table
/// holds. One piece moved by free-space collection stands for all that
/// share its blocks.
pub(crate) const MAX_FAMILY: usize = crate::format::header::MAX_SHARERS;

const _: () = assert!(MAX_FAMILY <= u64::BITS as usize);

/// Which volumes of `family` (bit `j` for `family[j]`) have block `lba`
/// where `want` says.
fn family_mask(family: &[Arc<Volume>], lba: u64, want: Entry) -> u64 {
    let mut mask = 0u64;
    for (j, v) in family.iter().enumerate().take(MAX_FAMILY) {
        if v.map.lock().get(lba) == want {
            mask |= 1 << j;
        }
    }
    mask
}

/// The ids of the volumes of `mask` in `family`, the first apart.
fn family_ids(family: &[Arc<Volume>], mask: u64) -> (u32, [u32; MAX_FAMILY], usize) {
    let mut first = 0u32;
    let mut also = [0u32; MAX_FAMILY];
    let mut n = 0usize;
    for (j, v) in family.iter().enumerate().take(MAX_FAMILY) {
        if mask & (1 << j) == 0 {
            continue;
        }
        if first == 0 {
            first = v.id;
        } else if let Some(a) = also.get_mut(n) {
            *a = v.id;
            n += 1;
        }
    }
    (first, also, n)
}

impl<O: crate::blk::disk::Operations> Source<'_, O> {
    /// Whether it must leave the chunks kept for free-space collection
    /// alone: host data must; trims free space, and collection is what
    /// the chunks are for.
    fn spares_reserve(&self) -> bool {
        matches!(self, Source::Host(_))
    }
}

/// A volume as the writer sees it.
pub(crate) struct Volume {
    /// Id named by host pieces.
    pub(crate) id: u32,
    /// Id of the root of its copy tree (its own if it is no copy).
    pub(crate) family: u32,
    /// Group new data goes to.
    pub(crate) group: usize,
    /// Forward map.
    pub(crate) map: Pin<KBox<Map>>,
}

/// The members and bio set a writer writes through.
pub(crate) struct Io<'a> {
    /// Members in index order.
    pub(crate) members: &'a [Member],
    /// Bio set for member bios.
    pub(crate) bioset: &'a BioSet,
}

/// Where the writer starts, as the member scan found things.
pub(crate) struct Start {
    /// Space with what the scan found marked used.
    pub(crate) space: Space,
    /// Sequence number of the next stripe.
    pub(crate) next_seq: u64,
    /// Highest sequence number known durable.
    pub(crate) durable_seq: u64,
    /// Header location of the newest stripe.
    pub(crate) prev: Option<StripeLocation>,
}

/// The write path of an array.
#[pin_data]
pub(crate) struct Writer {
    #[pin]
    state: SpinLock<State>,
    #[pin]
    changed: CondVar,
    slots: KVec<Pin<KBox<SpinLock<Slot>>>>,
    /// Data space of each buffer.
    data: KVec<Arc<IoBuf>>,
    /// Header block, P and Q of each buffer.
    out: KVec<Arc<IoBuf>>,
    /// Batch status of each buffer.
    status: KVec<Atomic<u32>>,
    /// Buffers whose batch has ended, for the worker.
    done: Atomic<u64>,
    policies: KVec<Policy>,
    uuid: Uuid,
    /// Largest strip of any group, in bytes.
    strip_bytes: usize,
    /// Chunks kept for free-space collection.
    reserve: u64,
    /// Counters.
    pub(crate) stats: WriterStats,
    /// The reads that freed space waits for.
    #[pin]
    reads: Reads,
}

/// Whose map entries [`Writer::fill`] points at the blocks it placed.
enum Fill<'a> {
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

/// Sets bit `bit` of `mask`.
fn set_bit(mask: &Atomic<u64>, bit: u16) {
    let b = 1u64 << (bit % 64);
    let mut cur = mask.load(Relaxed);
    while let Err(now) = mask.cmpxchg(cur, cur | b, Full) {
        cur = now;
    }
}

/// Offsets in a buffer's `out` part.
const HDR_OFF: usize = 0;
const P_OFF: usize = BLOCK;

impl Writer {
    /// A writer for groups `policies` of array `uuid`.
    pub(crate) fn new(
        uuid: Uuid,
        policies: KVec<Policy>,
        start: Start,
    ) -> Result<impl PinInit<Self, Error>> {
        let max_data = policies
            .iter()
            .map(|p| p.data_blocks())
            .max()
            .ok_or(EINVAL)?;
        let max_strip = policies
            .iter()
            .map(|p| u64::from(p.strip_blocks))
            .max()
            .ok_or(EINVAL)?;
        let data_bytes = usize::try_from(max_data)
            .ok()
            .and_then(|b| b.checked_mul(BLOCK))
            .ok_or(EINVAL)?;
        let strip_bytes = usize::try_from(max_strip)
            .ok()
            .and_then(|b| b.checked_mul(BLOCK))
            .ok_or(EINVAL)?;
        let out_bytes = strip_bytes.checked_mul(2).ok_or(EINVAL)? + BLOCK;
        // Four full stripes of the widest group.
        let reserve = 4 * policies.iter().map(|p| p.width as u64).max().unwrap_or(0);
        let mut slots = KVec::with_capacity(SLOTS, GFP_KERNEL)?;
        let mut data = KVec::with_capacity(SLOTS, GFP_KERNEL)?;
        let mut out = KVec::with_capacity(SLOTS, GFP_KERNEL)?;
        let mut status = KVec::with_capacity(SLOTS, GFP_KERNEL)?;
        let mut free = KVec::with_capacity(SLOTS, GFP_KERNEL)?;
        for i in 0..SLOTS {
            slots.push(
                KBox::pin_init(
                    new_spinlock!(Slot {
                        nominal: KBox::new(HeaderBuilder::EMPTY, GFP_KERNEL)?,
                        out: KBox::new(HeaderBuilder::EMPTY, GFP_KERNEL)?,
                        locs: [NO_LOC; MAX_STRIPS],
                        group: 0,
                        seq: 0,
                        durable_seq: 0,
                        prev: None,
                        plan: None,
                        by_flush: false,
                        head: 0,
                    }),
                    GFP_KERNEL,
                )?,
                GFP_KERNEL,
            )?;
            data.push(
                IoBuf::new(
                    data_bytes,
                    c"stria_stripe_data",
                    kernel::static_lock_class!(),
                )?,
                GFP_KERNEL,
            )?;
            out.push(
                IoBuf::new(out_bytes, c"stria_stripe_out", kernel::static_lock_class!())?,
                GFP_KERNEL,
            )?;
            status.push(Atomic::new(0u32), GFP_KERNEL)?;
            free.push(i as u16, GFP_KERNEL)?;
        }
        let inflight = KVec::with_capacity(SLOTS, GFP_KERNEL)?;
        let mut space = start.space;
        if let Some(p) = policies.first() {
            // Closing keeps a piece slot per data strip for splits.
            let pieces = MAX_PIECES.saturating_sub(p.data_strips()) as u64;
            space.set_full_cost(p.width as u64 * p.span(), p.data_blocks(), pieces);
        }
        let ready = KVec::with_capacity(SLOTS, GFP_KERNEL)?;
        Ok(try_pin_init!(Self {
            state <- new_spinlock!(State {
                free,
                open: [None; MAX_GROUPS],
                inflight,
                ready,
                next_seq: start.next_seq.max(1),
                copies: 0,
                durable_seq: start.durable_seq,
                prev: start.prev,
                prev_seq: start.durable_seq,
                open_seq: [0; MAX_GROUPS],
                since_flush: 0,
                space,
                failed: false,
                gc_started: 0,
                gc_runs: 0,
                gc_freed: 0,
            }),
            changed <- new_condvar!(),
            reads <- Reads::new(),
            slots,
            data,
            out,
            status,
            done: Atomic::new(0),
            policies,
            uuid,
            strip_bytes,
            reserve,
            stats: WriterStats {
                stripes: Atomic::new(0),
                partial: Atomic::new(0),
                host_blocks: Atomic::new(0),
                member_blocks: Atomic::new(0),
                moved_blocks: Atomic::new(0),
                collected: Atomic::new(0),
            },
        }))
    }

    fn slot(&self, id: u16) -> Result<&Pin<KBox<SpinLock<Slot>>>> {
        self.slots.get(usize::from(id)).ok_or(EINVAL)
    }

    /// Free blocks on `member`.
    pub(crate) fn free_blocks(&self, member: usize) -> u64 {
        self.state.lock().space.free_blocks(member)
    }

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
    pub(crate) fn write<T: Owner, O: crate::blk::disk::Operations>(
        &self,
        owner: &Arc<T>,
        io: &Io<'_>,
        vol: &Volume,
        lba: u64,
        n: u64,
        from: u64,
        src: Source<'_, O>,
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
                    let mask = |i: u64| family_mask(family, lba + i, at(i));
                    let skip = (done..n).take_while(|&i| mask(i) == 0).count() as u64;
                    let start = done + skip;
                    let first = if start < n { mask(start) } else { 0 };
                    let want = (start..n).take_while(|&i| mask(i) == first).count() as u64;
                    who = first;
                    (skip, want)
                }
                Source::Retrim { family, .. } => {
                    let mask = |i: u64| family_mask(family, lba + i, Entry::Unmapped);
                    let skip = (done..n).take_while(|&i| mask(i) == 0).count() as u64;
                    let start = done + skip;
                    let first = if start < n { mask(start) } else { 0 };
                    let want = (start..n).take_while(|&i| mask(i) == first).count() as u64;
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
                    self.changed.wait(&mut st);
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
                        self.changed.wait(&mut st);
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
            let mut slot = self.slot(id)?.lock();
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
    fn close_full<T: Owner>(
        &self,
        owner: &Arc<T>,
        io: &Io<'_>,
        mut st: Guard<'_, State, SpinLockBackend>,
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
    fn fill(
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
        let off = usize::try_from(placed.data_offset)
            .ok()
            .and_then(|o| o.checked_mul(BLOCK))
            .ok_or(EIO)?;
        let len = usize::try_from(placed.blocks)
            .ok()
            .and_then(|b| b.checked_mul(BLOCK))
            .ok_or(EIO)?;
        let src = usize::try_from(done)
            .ok()
            .and_then(|d| d.checked_mul(BLOCK))
            .ok_or(EIO)?;
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
    fn open(&self, st: &mut State, id: u16, g: usize, pol: &Policy, host: bool) -> Result {
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
        let mut slot = self.slot(id)?.lock();
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
    fn take_open(&self, st: &mut State, g: usize, by_flush: bool) -> Result<Option<u16>> {
        let Some(id) = st.open.get_mut(g).and_then(Option::take) else {
            return Ok(None);
        };
        let pol = self.policies.get(g).ok_or(EINVAL)?;
        let mut slot = self.slot(id)?.lock();
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

    /// Writes the stripe in buffer `id`, already taken out, or fails the
    /// array if it cannot.
    fn close<T: Owner>(&self, owner: &Arc<T>, io: &Io<'_>, id: u16) {
        if let Err(e) = self.build_and_submit(owner, io, id) {
            pr_err!("cannot write a stripe: error {}\n", e.to_errno());
            self.fail_stripe(id);
        }
    }

    fn fail_stripe(&self, id: u16) {
        let seq = self.slot(id).map(|s| s.lock().seq).unwrap_or(0);
        let mut st = self.state.lock();
        st.failed = true;
        // The buffer stays out of use: reads of its blocks still find it.
        st.inflight.retain(|s| *s != seq);
        self.changed.notify_all();
    }

    fn build_and_submit<T: Owner>(&self, owner: &Arc<T>, io: &Io<'_>, id: u16) -> Result {
        let mut guard = self.slot(id)?.lock();
        let slot = &mut *guard;
        let plan = slot.plan.ok_or(EINVAL)?;
        if slot.by_flush {
            self.stats.partial.add(1, Relaxed);
        }
        let pol = self.policies.get(slot.group).ok_or(EINVAL)?;
        let nr = plan.nr_strips;
        let (parity_index, q_index) = geometry::default_parity(plan.raid, nr, slot.seq);
        let params = StripeParams {
            array_uuid: self.uuid,
            seq: slot.seq,
            timestamp: crate::blk::wall_clock_seconds().saturating_mul(1_000_000_000),
            prev: slot.prev,
            raid_type: plan.raid,
            group: pol.group,
            strip_blocks: plan.strip_blocks,
            parity_index,
            q_index,
            durable_seq: slot.durable_seq,
        };
        let seq = slot.seq;
        let fmt = move |e: FormatError| {
            pr_err!("stripe {}: {}\n", seq, e.as_str());
            EIO
        };
        let locs = slot.locs.get(..nr).ok_or(EIO)?;
        slot.out.reset(&params, locs).map_err(fmt)?;
        // The same pieces in the same order land at the same data offsets
        // whatever the strip size: that is where the map points.
        let mut fill = 0u64;
        for p in slot.nominal.header().pieces() {
            let mut also = [0u32; MAX_FAMILY];
            let mut k = 0usize;
            for (a, id) in also
                .iter_mut()
                .zip(slot.nominal.header().volumes_of(p).skip(1))
            {
                *a = id;
                k += 1;
            }
            let also = also.get(..k).unwrap_or(&[]);
            if p.is_trim() {
                let n = slot
                    .out
                    .append_trim_for(p.volume, also, p.host_lba, u64::from(p.host_len))
                    .map_err(fmt)?;
                if n != u64::from(p.host_len) {
                    pr_err!("stripe {}: a trim record split when it was closed\n", seq);
                    return Err(EIO);
                }
                continue;
            }
            let a = slot
                .out
                .append_for(p.volume, also, p.host_lba, u64::from(p.len))
                .map_err(fmt)?;
            if a.data_offset != fill || a.blocks != u64::from(p.len) {
                pr_err!("stripe {}: pieces moved when it was closed\n", seq);
                return Err(EIO);
            }
            fill += a.blocks;
        }
        let used = usize::try_from(fill).map_err(|_| EIO)? * BLOCK;
        let sbytes = plan.strip_blocks as usize * BLOCK;
        let data = self.data.get(usize::from(id)).ok_or(EINVAL)?;
        let out = self.out.get(usize::from(id)).ok_or(EINVAL)?;
        let q_off = P_OFF + self.strip_bytes;
        data.with(|d| -> Result {
            let end = plan.nr_data * sbytes;
            d.get_mut(used..end).ok_or(EIO)?.fill(0);
            let mut strips: [&[u8]; MAX_STRIPS] = [&[]; MAX_STRIPS];
            for (k, s) in strips.iter_mut().enumerate().take(plan.nr_data) {
                *s = d.get(k * sbytes..(k + 1) * sbytes).ok_or(EIO)?;
            }
            let data_strips = strips.get(..plan.nr_data).ok_or(EIO)?;
            out.with(|o| -> Result {
                let (hdr, rest) = o.split_at_mut(P_OFF);
                let (p, q) = rest.split_at_mut(self.strip_bytes);
                let p = p.get_mut(..sbytes).ok_or(EIO)?;
                let q = q.get_mut(..sbytes).ok_or(EIO)?;
                match plan.raid {
                    RaidType::Raid5 => parity::gen_p(data_strips, p).map_err(fmt)?,
                    RaidType::Raid6 => parity::gen_pq(data_strips, p, q).map_err(fmt)?,
                    RaidType::Raid0 | RaidType::Raid1 => {}
                }
                for i in 0..nr {
                    let content: &[u8] = match geometry::strip_role(slot.out.header(), i) {
                        Ok(StripRole::Data(k)) => {
                            data_strips.get(usize::from(k)).copied().ok_or(EIO)?
                        }
                        Ok(StripRole::Mirror) => data_strips.first().copied().ok_or(EIO)?,
                        Ok(StripRole::P) => p,
                        Ok(StripRole::Q) => q,
                        Err(e) => return Err(fmt(e)),
                    };
                    slot.out
                        .set_data_crc(i, crc::crc32c(content))
                        .map_err(fmt)?;
                }
                slot.out.encode(hdr).map_err(fmt)
            })
        })?;
        // Where each strip goes and what it carries, so that the bios can
        // be built (which may sleep) without the slot's lock.
        let mut targets = [(NO_LOC, false, 0usize); MAX_STRIPS];
        for (i, t) in targets.iter_mut().enumerate().take(nr) {
            let loc = *slot.locs.get(i).ok_or(EINVAL)?;
            *t = match geometry::strip_role(slot.out.header(), i).map_err(fmt)? {
                StripRole::Data(k) => (loc, false, usize::from(k) * sbytes),
                StripRole::Mirror => (loc, false, 0),
                StripRole::P => (loc, true, P_OFF),
                StripRole::Q => (loc, true, q_off),
            };
        }
        drop(guard);
        let mut batch = Batch::new(owner.clone(), usize::from(id))?;
        for (loc, in_out, off) in targets.iter().take(nr) {
            let buf = if *in_out { out } else { data };
            let member = io.members.get(usize::from(loc.member)).ok_or(EIO)?;
            let sector = loc.lba.checked_mul(8).ok_or(EIO)?;
            batch.write(
                io.bioset,
                &member.bdev,
                false,
                sector,
                &[(out, HDR_OFF, BLOCK), (buf, *off, sbytes)],
            )?;
        }
        self.stats.stripes.add(1, Relaxed);
        self.stats.member_blocks.add(plan.cost(), Relaxed);
        batch.submit();
        Ok(())
    }

    /// Records that buffer `id`'s batch ended with `status`; the caller
    /// then has the worker run [`Self::complete`]. Interrupt context.
    pub(crate) fn batch_ended(&self, id: usize, status: Status) {
        if let Some(s) = self.status.get(id) {
            s.store(u32::from(status.is_err()), Relaxed);
        }
        set_bit(&self.done, (id % 64) as u16);
    }

    /// Finishes the stripes whose batches ended: points their blocks at the
    /// members and frees their buffers. Process context (the worker).
    /// `vols` are the volumes being served.
    ///
    /// Returns false, leaving the rest for another call, when a copy was
    /// made after `vols` was listed with [`Self::copies`] at `copies`: its
    /// map may point into these buffers too.
    pub(crate) fn complete(&self, io: &Io<'_>, vols: &[Arc<Volume>], copies: u64) -> bool {
        let mut mask = self.done.xchg(0, Full);
        for id in 0..SLOTS {
            if mask & (1u64 << id) == 0 {
                continue;
            }
            let id = id as u16;
            let failed = self
                .status
                .get(usize::from(id))
                .is_none_or(|s| s.load(Relaxed) != 0);
            let Ok(slot) = self.slot(id) else { continue };
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
    fn written_below(&self, st: &State) -> u64 {
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
    fn checkpoint(&self, io: &Io<'_>) {
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

    /// Stops counting the blocks of `vol`, just deleted, as live, except
    /// where copies still point at them.
    pub(crate) fn forget(&self, vol: &Volume) {
        let released = {
            let mut st = self.state.lock();
            let newest = st.next_seq - 1;
            let space = &mut st.space;
            vol.map.release_all(|e| {
                if let Entry::Disk { member, block } = e {
                    space.drop_live(member, block, newest);
                }
            })
        };
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

    /// Makes every stripe closed so far durable - waiting for those still
    /// being written, then flushing the members - without closing the
    /// open stripes (a flush would write them part full), and frees the
    /// dead stripes that allows.
    pub(crate) fn sync_closed(&self, io: &Io<'_>) -> Result {
        let target = {
            let mut st = self.state.lock();
            let open = st
                .open
                .iter()
                .zip(st.open_seq.iter())
                .filter_map(|(o, q)| o.map(|_| *q))
                .min();
            let target = open.unwrap_or(st.next_seq).saturating_sub(1);
            while !st.failed && st.inflight.iter().any(|&s| s <= target) {
                self.changed.wait(&mut st);
            }
            if st.failed {
                return Err(EIO);
            }
            target
        };
        for m in io.members {
            m.bdev.flush()?;
        }
        let mut st = self.state.lock();
        st.durable_seq = st.durable_seq.max(target);
        self.reclaim_locked(&mut st);
        Ok(())
    }

    /// Free and total blocks of member space, cheaply.
    pub(crate) fn free_and_total(&self) -> (u64, u64) {
        self.state.lock().space.free_and_total()
    }

    /// Member space totals (a scan of every chunk).
    pub(crate) fn space_stats(&self) -> crate::alloc::SpaceStats {
        self.state.lock().space.stats()
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
        let st = self.state.lock();
        let v = st.space.victim(pick, st.next_seq, below)?;
        let mut places = [NO_LOC; MAX_STRIPS];
        let n = st.space.stripe_places(v.head, &mut places);
        Some((v, places, n))
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

    /// The reads that freed space waits for.
    pub(crate) fn reads(&self) -> &Reads {
        &self.reads
    }

    /// Frees what dead stripes [`Space::reclaim`] lets go of now, and wakes
    /// writers that may be waiting for the room; returns the read epoch it
    /// retired stripes in and the oldest epoch that may still have reads.
    fn reclaim_locked(&self, st: &mut State) -> (u64, u64) {
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

    /// Points every block of the written stripe in `slot` that still lives
    /// in its buffer at its place on the members, where it is now live.
    fn move_to_members(&self, slot: &Slot, id: u16, vols: &[Arc<Volume>], space: &mut Space) {
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

    /// Closes every open stripe and waits until every stripe closed so far
    /// is written, then flushes every member: everything acknowledged
    /// before the call is then on stable storage.
    pub(crate) fn flush<T: Owner>(&self, owner: &Arc<T>, io: &Io<'_>) -> Result {
        self.flush_with(owner, io, false, || Ok(())).map(|_| ())
    }

    /// A flush that runs `at` at its point in the log: every host piece
    /// packed before lies in a stripe below the sequence number it
    /// returns, every one packed after at or above it. `at` runs under the
    /// writer's state lock and must not sleep; with `copy`, it makes an
    /// instant copy, which [`Self::copies`] counts.
    pub(crate) fn flush_with<T: Owner>(
        &self,
        owner: &Arc<T>,
        io: &Io<'_>,
        copy: bool,
        at: impl FnOnce() -> Result,
    ) -> Result<u64> {
        let mut closing: [Option<u16>; MAX_GROUPS] = [None; MAX_GROUPS];
        let (target, point) = {
            let mut st = self.state.lock();
            for (g, c) in closing.iter_mut().enumerate() {
                *c = self.take_open(&mut st, g, true)?;
            }
            // No stripe is open now: whatever is packed next opens one
            // with a higher sequence number. The stripes closed are
            // written whatever `at` says.
            let done = at();
            if copy && done.is_ok() {
                st.copies += 1;
            }
            st.since_flush = 0;
            (st.next_seq - 1, done.map(|()| st.next_seq))
        };
        for id in closing.into_iter().flatten() {
            self.close(owner, io, id);
        }
        {
            let mut st = self.state.lock();
            while !st.failed && st.inflight.iter().any(|&s| s <= target) {
                self.changed.wait(&mut st);
            }
            if st.failed {
                return Err(EIO);
            }
        }
        for m in io.members {
            m.bdev.flush()?;
        }
        let mut st = self.state.lock();
        st.durable_seq = st.durable_seq.max(target);
        self.reclaim_locked(&mut st);
        point
    }
}

// A failed assertion is the test failing; the tables under test are built
// here, not read from a member.
#[allow(clippy::indexing_slicing, clippy::panic)]
#[kernel::prelude::kunit_tests(stria_writer)]
mod tests {
    use super::*;

    fn policy(raid: RaidType, width: usize, strip_blocks: u32) -> Policy {
        Policy {
            group: 0,
            members: (1 << width) - 1,
            raid,
            width,
            strip_blocks,
        }
    }

    #[test]
    fn full_stripes_keep_their_shape() {
        for (raid, width) in [
            (RaidType::Raid5, 4),
            (RaidType::Raid6, 5),
            (RaidType::Raid0, 3),
            (RaidType::Raid1, 2),
        ] {
            let p = policy(raid, width, 16);
            let full = plan(&p, p.data_blocks());
            assert_eq!(
                full,
                Some(Plan {
                    raid,
                    nr_data: p.data_strips(),
                    nr_strips: width,
                    strip_blocks: 16,
                })
            );
        }
    }

    #[test]
    fn narrow_stripes_go_to_the_roomiest_members() -> Result {
        // Four members of 10 chunks of 17 blocks each.
        let areas = [(0u64, 170u64), (0, 170), (0, 170), (0, 170)];
        let mut s = Space::new(&areas, 17)?;
        s.finish_claims(0);
        let mut taken = [NO_LOC; MAX_STRIPS];
        // Members 0 and 1 lose two chunks, member 2 one.
        s.alloc_strips(0b0011, 2, 17, &mut taken)?;
        s.alloc_strips(0b0011, 2, 17, &mut taken)?;
        s.alloc_strips(0b0100, 1, 17, &mut taken)?;
        let mut locs = [NO_LOC; 4];
        for (m, l) in locs.iter_mut().enumerate() {
            l.member = m as u8;
        }
        sort_by_room(&mut locs, &s, 0);
        let order: [u8; 4] = [
            locs[0].member,
            locs[1].member,
            locs[2].member,
            locs[3].member,
        ];
        assert_eq!(order, [3, 2, 0, 1]);
        // Equal members take turns as the sequence number goes on.
        let mut firsts = [0u32; 4];
        let mut s = Space::new(&areas, 17)?;
        s.finish_claims(0);
        for seq in 0..8 {
            sort_by_room(&mut locs, &s, seq);
            firsts[usize::from(locs[0].member)] += 1;
        }
        assert_eq!(firsts, [2, 2, 2, 2]);
        Ok(())
    }

    #[test]
    fn small_stripes_are_mirrored_or_narrow() {
        let p5 = policy(RaidType::Raid5, 4, 16);
        // One block: two copies beat a three-strip RAID-5 stripe.
        let one = plan(&p5, 1);
        assert_eq!(
            one,
            Some(Plan {
                raid: RaidType::Raid1,
                nr_data: 1,
                nr_strips: 2,
                strip_blocks: 1,
            })
        );
        // RAID-6 keeps surviving two lost members: three strips of one
        // block (one data strip and its P and Q, or three copies).
        let p6 = policy(RaidType::Raid6, 5, 16);
        assert_eq!(plan(&p6, 1).map(|p| (p.nr_strips, p.cost())), Some((3, 6)));
        // More than a strip: parity, never strips longer than allocated.
        for used in 1..=p5.data_blocks() {
            let Some(c) = plan(&p5, used) else {
                panic!("no plan for {used} blocks");
            };
            assert!(c.strip_blocks <= 16);
            assert!(c.nr_data as u64 * u64::from(c.strip_blocks) >= used);
            assert!(c.cost() <= 4 * 17);
            // Never worse than padding the whole stripe.
            assert!(c.nr_strips <= 4);
        }
        assert_eq!(plan(&p5, 0), None);
        assert_eq!(plan(&p5, p5.data_blocks() + 1), None);
    }

    #[test]
    fn policies_from_groups_are_checked() {
        let g = StripeGroup {
            members: 0b1111,
            raid_type: RaidType::Raid5,
            width: 4,
            strip_blocks: 16,
        };
        assert!(Policy::from_group(0, &g, 4).is_ok());
        // A member beyond the array, too few members, a zero strip.
        assert!(Policy::from_group(0, &g, 3).is_err());
        let narrow = StripeGroup { width: 5, ..g };
        assert!(Policy::from_group(0, &narrow, 4).is_err());
        let empty = StripeGroup {
            strip_blocks: 0,
            ..g
        };
        assert!(Policy::from_group(0, &empty, 4).is_err());
    }
}
