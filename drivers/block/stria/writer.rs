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

mod complete;
mod durable;
mod pack;
mod plan;
mod source;
mod space;
mod stripe;

pub(crate) use plan::plan;
pub(crate) use plan::sort_by_room;
pub(crate) use plan::Plan;
pub(crate) use plan::Policy;
pub(crate) use source::HostData;
pub(crate) use source::Source;
pub(crate) use source::MAX_FAMILY;

use crate::alloc::Space;
use crate::blk::bio::BioSet;
use crate::blk::iobuf::BatchDone;
use crate::blk::iobuf::IoBuf;
use crate::format::geometry;
use crate::format::geometry::RaidType;
use crate::format::geometry::BLOCK_SIZE;
use crate::format::geometry::MAX_STRIPS;
use crate::format::header::HeaderBuilder;
use crate::format::header::StripeLocation;
use crate::format::header::MAX_GROUPS;
use crate::format::header::MAX_PIECES;
use crate::format::superblock::StripeGroup;
use crate::format::uuid::Uuid;
use crate::map::Map;
use crate::members::Member;
use crate::reads::Reads;
use crate::timed::Timed;
use kernel::new_condvar;
use kernel::new_mutex;
use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Full;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;
use kernel::sync::CondVar;
use kernel::sync::Mutex;
use kernel::sync::SpinLock;

/// Stripe buffers: stripes being filled or written at once.
pub(crate) const BUFFERS: usize = 8;

/// Stripes written between two flushes of the members by the writer itself.
const CHECKPOINT_STRIPES: u32 = 32;

/// Where nothing was allocated.
const NO_LOC: StripeLocation = StripeLocation { member: 0, lba: 0 };

/// A stripe buffer's bookkeeping.
struct Buffer {
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
    state: Timed<State>,
    #[pin]
    changed: CondVar,
    buffers: KVec<Pin<KBox<SpinLock<Buffer>>>>,
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
    /// One stripe's batch built at a time: the bios of a batch are all
    /// allocated before any is submitted, and the bio set's reserve holds
    /// one batch (see [`Policy::batch_bios`]), so that a builder waiting
    /// for a bio only waits for bios already submitted.
    #[pin]
    building: Mutex<()>,
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
const P_OFF: usize = BLOCK_SIZE;

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
        let data_bytes = geometry::blocks_to_bytes(max_data).map_err(|_| EINVAL)?;
        let strip_bytes = geometry::blocks_to_bytes(max_strip).map_err(|_| EINVAL)?;
        let out_bytes = strip_bytes.checked_mul(2).ok_or(EINVAL)? + BLOCK_SIZE;
        // Four full stripes of the widest group.
        let reserve = 4 * policies.iter().map(|p| p.width as u64).max().unwrap_or(0);
        let mut buffers = KVec::with_capacity(BUFFERS, GFP_KERNEL)?;
        let mut data = KVec::with_capacity(BUFFERS, GFP_KERNEL)?;
        let mut out = KVec::with_capacity(BUFFERS, GFP_KERNEL)?;
        let mut status = KVec::with_capacity(BUFFERS, GFP_KERNEL)?;
        let mut free = KVec::with_capacity(BUFFERS, GFP_KERNEL)?;
        for i in 0..BUFFERS {
            buffers.push(
                KBox::pin_init(
                    new_spinlock!(Buffer {
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
        let inflight = KVec::with_capacity(BUFFERS, GFP_KERNEL)?;
        let mut space = start.space;
        if let Some(p) = policies.first() {
            // Closing keeps a piece slot per data strip for splits.
            let pieces = MAX_PIECES.saturating_sub(p.data_strips()) as u64;
            space.set_full_cost(p.width as u64 * p.span(), p.data_blocks(), pieces);
        }
        let ready = KVec::with_capacity(BUFFERS, GFP_KERNEL)?;
        Ok(try_pin_init!(Self {
            state <- Timed::new(new_spinlock!(State {
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
            })),
            changed <- new_condvar!(),
            reads <- Reads::new(),
            building <- new_mutex!(()),
            buffers,
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

    fn buffer(&self, id: u16) -> Result<&Pin<KBox<SpinLock<Buffer>>>> {
        self.buffers.get(usize::from(id)).ok_or(EINVAL)
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
