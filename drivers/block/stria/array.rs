// SPDX-License-Identifier: GPL-2.0

//! An assembled array: its members, volumes, writer and volume table.

mod assemble;
mod status;
mod table;
mod workers;

pub(crate) use table::divergence_meta;
pub(crate) use table::divergence_of;
pub(crate) use table::Table;
pub(crate) use workers::Deferred;
pub(crate) use workers::Waiting;

use crate::blk::bio::BioSet;
use crate::blk::disk::StackOn;
use crate::format::geometry::BLOCK_SIZE;
use crate::format::uuid::Uuid;
use crate::gc;
use crate::members;
use crate::members::Member;
use crate::writer::Io;
use crate::writer::Volume;
use crate::writer::Writer;
use kernel::prelude::*;
use kernel::sync::atomic::Acquire;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Release;
use kernel::sync::Arc;
use kernel::sync::Mutex;
use kernel::sync::SpinLock;
use kernel::workqueue::Work;

/// Largest host request, in sectors (1 MiB).
pub(crate) const MAX_REQUEST_SECTORS: u32 = 2048;

/// I/O counters reported by STATUS, for all volumes together.
pub(crate) struct Counters {
    /// Read requests.
    pub(crate) reads: Atomic<u64>,
    /// Write requests.
    pub(crate) writes: Atomic<u64>,
    /// Flush requests.
    pub(crate) flushes: Atomic<u64>,
    /// Requests failed.
    pub(crate) errors: Atomic<u64>,
}

/// An array of members and the volumes it serves.
#[pin_data]
pub(crate) struct Array {
    identity: members::Identity,
    members: KVec<Member>,
    /// Volumes being served, for the writer.
    #[pin]
    volumes: SpinLock<KVec<Arc<Volume>>>,
    /// Serialises changes of the volume table and superblock writes.
    #[pin]
    table: Mutex<KBox<Table>>,
    #[pin]
    writer: Writer,
    #[pin]
    bioset: BioSet,
    /// Finishes written stripes.
    #[pin]
    work: Work<Array, 0>,
    /// Requests handed to the deferral worker, in order.
    #[pin]
    deferred: Waiting,
    /// Serves deferred requests.
    #[pin]
    defer_work: Work<Array, 1>,
    /// Writes the stripes `queue_rq` filled.
    #[pin]
    stripe_work: Work<Array, 2>,
    /// Reads, which submit member bios and so cannot be served in
    /// `queue_rq`; apart from `deferred`, where a read would wait behind
    /// writes waiting for a stripe buffer.
    #[pin]
    reads: Waiting,
    #[pin]
    read_work: Work<Array, 3>,
    /// Free-space collection in the background.
    #[pin]
    gc_work: Work<Array, 4>,
    /// One collection at a time: background or on demand.
    #[pin]
    gc_lock: Mutex<()>,

    /// Work items queued or running, and collections on demand: each
    /// holds a reference to the array, and with it the members.
    busy: Arc<Busy>,
    /// Disks of the array's volumes. Each has a tag set of its own, so as
    /// many requests can wait for a worker as all of them have tags: room
    /// for that many is made in `deferred` and `reads` before a disk is
    /// added, and a push under their locks never allocates or fails.
    /// Changed only by one caller at a time (see [`Self::room_for_disk`]).
    disks: Atomic<usize>,
    /// Background collection runs queued and not yet ended.
    gc_queued: Atomic<u32>,
    /// The array is being stopped: no more background collection.
    stopping: Atomic<bool>,
    counters: Counters,
}

/// Work queued or running for an array, each item holding a reference to
/// it. Kept apart from the array so that an item can let go of the array
/// before it counts itself done: once the count is zero, no work item
/// holds the array, and with it the members, any more.
struct Busy(Atomic<u32>);

impl Busy {
    /// Ends the run of a work item on `array`, the item's reference to it
    /// dropped first.
    fn finished(array: Arc<Array>) {
        let busy = array.busy.clone();
        drop(array);
        busy.0.fetch_sub(1, Release);
    }
}

impl Array {
    /// Whether the array is being stopped.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Acquire)
    }

    /// The array's UUID.
    pub(crate) fn uuid(&self) -> Uuid {
        self.identity.uuid
    }

    /// The array's stripe groups.
    pub(crate) fn nr_groups(&self) -> usize {
        self.identity.groups.len()
    }

    /// The writer.
    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Member `i`.
    pub(crate) fn member(&self, i: u8) -> Option<&Member> {
        self.members.get(usize::from(i))
    }

    /// The bio set for member bios.
    pub(crate) fn bioset(&self) -> &BioSet {
        &self.bioset
    }

    /// The I/O counters.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The members and bio set, for the writer.
    pub(crate) fn io(&self) -> Io<'_> {
        Io {
            members: &self.members,
            bioset: &self.bioset,
        }
    }

    /// Preferred I/O size: a block.
    pub(crate) fn io_min(&self) -> u32 {
        BLOCK_SIZE as u32
    }

    /// Optimal I/O size: a megabyte, the largest request.
    pub(crate) fn io_opt(&self) -> u32 {
        MAX_REQUEST_SECTORS * 512
    }

    /// The members with the offset of their data areas, for the disk's
    /// queue limits.
    pub(crate) fn stack_on(&self) -> Result<KVec<StackOn<'_>>> {
        let mut v = KVec::with_capacity(self.members.len(), GFP_KERNEL)?;
        for m in self.members.iter() {
            v.push(
                StackOn {
                    bdev: &m.bdev,
                    offset_sectors: m.data_start / 512,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(v)
    }
}

impl gc::Pool for Array {
    fn writer(&self) -> &Writer {
        Array::writer(self)
    }

    fn io(&self) -> Io<'_> {
        Array::io(self)
    }

    fn stopping(&self) -> bool {
        Array::stopping(self)
    }

    fn uuid(&self) -> Uuid {
        Array::uuid(self)
    }

    fn member(&self, i: u8) -> Option<&Member> {
        Array::member(self, i)
    }

    fn family_any(&self, ids: impl Iterator<Item = u32>) -> Result<KVec<Arc<Volume>>> {
        Array::family_any(self, ids)
    }
}
