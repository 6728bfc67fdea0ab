// SPDX-License-Identifier: GPL-2.0

//! An assembled array: its members, volumes, writer and volume table.

mod assemble;
mod status;
mod table;
mod workers;

pub(crate) use table::divergence_meta;
pub(crate) use table::divergence_of;
pub(crate) use table::Table;

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
use kernel::sync::atomic::Relaxed;
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
    /// Bios of stripe writes: a reserve of one stripe's batch.
    #[pin]
    write_bios: BioSet,
    /// Bios of host reads: each reader holds one unsubmitted bio at most.
    #[pin]
    read_bios: BioSet,
    /// Finishes written stripes.
    #[pin]
    work: Work<Array, 0>,
    /// Writes the stripes `queue_rq` filled.
    #[pin]
    stripe_work: Work<Array, 1>,
    /// Free-space collection in the background.
    #[pin]
    gc_work: Work<Array, 2>,
    /// One collection at a time: background or on demand.
    #[pin]
    gc_lock: Mutex<()>,

    /// Work items queued or running, the volumes' too, and collections on
    /// demand: each holds a reference to the array, and with it the
    /// members.
    busy: Arc<Busy>,
    /// Background collection runs queued and not yet ended.
    gc_queued: Atomic<u32>,
    /// The array is being stopped: no more background collection.
    stopping: Atomic<bool>,
    counters: Counters,
}

/// Work queued or running for an array, each item holding a reference to
/// it, directly or through a volume's device. Kept apart from the array so
/// that an item can let go of the array before it counts itself done: once
/// the count is zero, no work item holds the array, and with it the
/// members, any more.
pub(crate) struct Busy(Atomic<u32>);

impl Busy {
    /// Queues work item `item` with `enqueue`, counted as busy until it has
    /// run; returns whether it was queued (not already waiting to run).
    pub(crate) fn kick<T>(
        &self,
        item: Arc<T>,
        enqueue: impl FnOnce(Arc<T>) -> Result<(), Arc<T>>,
    ) -> bool {
        self.0.add(1, Relaxed);
        if enqueue(item).is_ok() {
            return true;
        }
        self.0.fetch_sub(1, Release);
        false
    }

    /// Ends the run of a work item, `holder`, its reference to the array,
    /// dropped first.
    pub(crate) fn finished<T>(self: Arc<Self>, holder: T) {
        drop(holder);
        self.0.fetch_sub(1, Release);
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

    /// The count of work holding the array.
    pub(crate) fn busy(&self) -> &Arc<Busy> {
        &self.busy
    }

    /// The writer.
    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Member `i`.
    pub(crate) fn member(&self, i: u8) -> Option<&Member> {
        self.members.get(usize::from(i))
    }

    /// The bio set for member reads.
    pub(crate) fn read_bios(&self) -> &BioSet {
        &self.read_bios
    }

    /// The I/O counters.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The members and bio set, for the writer.
    pub(crate) fn io(&self) -> Io<'_> {
        Io {
            members: &self.members,
            bioset: &self.write_bios,
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
