// SPDX-License-Identifier: GPL-2.0

//! The array's work items: completions, deferred requests, stripe
//! writes, reads and free-space collection, each on its own queue.

use super::Array;
use super::Busy;
use crate::blk::iobuf::BatchDone;
use crate::blk::request::Fanout;
use crate::blk::wq;
use crate::blk::wq::Kind;
use crate::blk::Status;
use crate::gc;
use crate::volume::VolumeDev;
use crate::writer::Owner;
use crate::writer::Source;
use crate::writer::Volume;
use kernel::prelude::*;
use kernel::sync::atomic::Acquire;
use kernel::sync::atomic::Full;
use kernel::sync::atomic::Relaxed;
use kernel::sync::atomic::Release;
use kernel::sync::Arc;
use kernel::sync::Mutex;
use kernel::sync::SpinLock;
use kernel::workqueue::WorkItem;

/// Requests of one volume's disk that can wait at once: one per tag.
const TAGS_PER_DISK: usize = crate::blk::disk::QUEUE_DEPTH as usize;

/// Requests waiting for a worker, oldest first.
///
/// `queue_rq` adds to `list` without allocating, so it has room for every
/// tag of every disk. The worker swaps the whole list with `spare` and
/// serves that outside the spinlock, so that neither side moves the
/// requests left behind one taken.
///
/// # Invariants
///
/// Outside [`Waiting::grow`], `list` and `spare` have the same capacity,
/// and `spare` is empty whenever its mutex is free.
#[pin_data]
pub(crate) struct Waiting {
    #[pin]
    list: SpinLock<KVVec<Deferred>>,
    #[pin]
    spare: Mutex<KVVec<Deferred>>,
}

impl Waiting {
    /// Two empty lists, to be grown before the first disk.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            list <- kernel::new_spinlock!(KVVec::new()),
            spare <- kernel::new_mutex!(KVVec::new()),
        })
    }

    /// Queues `d`, or hands it back if there is no room (atomic context).
    fn push(&self, d: Deferred) -> Result<(), Deferred> {
        self.list
            .lock()
            .push_within_capacity(d)
            .map_err(|kernel::alloc::kvec::PushError(d)| d)
    }

    /// Gives both lists room for `want` requests.
    fn grow(&self, want: usize) -> Result {
        // Held throughout, so that the worker neither swaps nor serves.
        let mut spare = self.spare.lock();
        if spare.capacity() < want {
            *spare = KVVec::with_capacity(want, GFP_KERNEL)?;
        }
        if self.list.lock().capacity() >= want {
            return Ok(());
        }
        // Allocated outside the spinlock, filled and swapped in under it.
        let mut fresh = KVVec::with_capacity(want, GFP_KERNEL)?;
        let mut l = self.list.lock();
        for d in l.drain_all() {
            // Cannot fail: `fresh` has more room than `l` had.
            if fresh.push_within_capacity(d).is_err() {
                return Err(ENOMEM);
            }
        }
        core::mem::swap(&mut *l, &mut fresh);
        drop(l);
        // INVARIANT: both now hold at least `want`; `fresh`, the old list,
        // is empty and freed here.
        drop(fresh);
        Ok(())
    }

    /// Runs `serve` on every request queued, oldest first, until none is
    /// left (worker context).
    fn serve_all(&self, mut serve: impl FnMut(Deferred)) {
        let mut batch = self.spare.lock();
        loop {
            {
                let mut l = self.list.lock();
                if l.is_empty() {
                    break;
                }
                core::mem::swap(&mut *l, &mut *batch);
            }
            for d in batch.drain_all() {
                serve(d);
            }
        }
        // INVARIANT: `batch` is empty again when its guard drops.
    }
}

/// A request `queue_rq` cannot finish, handed to a worker.
///
/// `queue_rq` must not sleep, and it may run inside the submission of a bio
/// to the volume, where member bios are only queued until it returns:
/// waiting there for a stripe buffer or a flush would wait for itself.
pub(crate) enum Deferred {
    /// A write that found no free stripe buffer after `done` blocks.
    Write {
        /// The request.
        fan: Fanout<VolumeDev>,
        /// Its volume.
        vol: Arc<Volume>,
        /// First block.
        lba: u64,
        /// Blocks.
        n: u64,
        /// Blocks already packed.
        done: u64,
        /// Whether it must be durable on completion.
        fua: bool,
        /// A discard or write-zeroes: trim records, no data.
        trim: bool,
    },
    /// A flush, or a FUA write already packed.
    Flush {
        /// The request.
        fan: Fanout<VolumeDev>,
    },
    /// A read: it submits member bios, which may sleep.
    Read {
        /// The request.
        fan: Fanout<VolumeDev>,
        /// Its volume.
        vol: Arc<Volume>,
    },
}

kernel::impl_has_work! {
    impl HasWork<Self, 0> for Array { self.work }
    impl HasWork<Self, 1> for Array { self.defer_work }
    impl HasWork<Self, 2> for Array { self.stripe_work }
    impl HasWork<Self, 3> for Array { self.read_work }
    impl HasWork<Self, 4> for Array { self.gc_work }
}

impl WorkItem<0> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        // A snapshot: volumes dropped while the list is locked would free
        // their maps there, which may sleep. Taken again when a copy made
        // meanwhile is missing from it.
        loop {
            let copies = this.writer.copies();
            match this.volume_list() {
                Ok(vols) => {
                    if !this.writer.complete(&this.io(), &vols, copies) {
                        continue;
                    }
                    if gc::wanted(&this.writer) {
                        Self::need_space(&this);
                    }
                }
                Err(_) => {
                    pr_err!("out of memory finishing written stripes: retrying\n");
                    Self::kick(&this, |a| wq::queue(Kind::Complete).enqueue::<_, 0>(a));
                }
            }
            break;
        }
        Busy::finished(this);
    }
}

impl WorkItem<1> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        this.deferred.serve_all(|d| this.serve_deferred(d));
        Busy::finished(this);
    }
}

impl WorkItem<2> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        crate::blk::noio(|| this.writer.write_ready(&this, &this.io()));
        Busy::finished(this);
    }
}

impl WorkItem<3> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        this.reads.serve_all(|d| this.serve_deferred(d));
        Busy::finished(this);
    }
}

impl WorkItem<4> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        crate::blk::noio(|| {
            let _one = this.gc_lock.lock();
            if this.stopping.load(Acquire) {
                this.writer.gc_ended(0);
            } else {
                gc::background(&this);
            }
        });
        this.gc_queued.fetch_sub(1, Release);
        Busy::finished(this);
    }
}

impl Owner for Array {
    fn stripes_ready(this: &Arc<Self>) {
        // Already queued: that run will see these stripes too.
        Self::kick(this, |a| wq::queue(Kind::Stripes).enqueue::<_, 2>(a));
    }

    fn need_space(this: &Arc<Self>) {
        if this.stopping.load(Acquire) {
            return;
        }
        // Counted before it can run; if already queued, writers wait for
        // the end of that run.
        this.gc_queued.add(1, Relaxed);
        if !Self::kick(this, |a| wq::queue(Kind::Collect).enqueue::<_, 4>(a)) {
            this.gc_queued.fetch_sub(1, Release);
        }
    }
}

impl BatchDone for Array {
    fn batch_started(&self) {
        // A stop waits for the batch's reference as for a work item's.
        self.busy.0.add(1, Relaxed);
    }

    fn batch_done(this: Arc<Self>, tag: usize, status: Status) {
        this.writer.batch_ended(tag, status);
        // Already queued: that run will see this batch too.
        Self::kick(&this, |a| wq::queue(Kind::Complete).enqueue::<_, 0>(a));
        Busy::finished(this);
    }
}

impl Array {
    /// Runs free-space collection until `percent` of the pool is free (or
    /// nothing is worth collecting), ranking stripes by `pick`.
    ///
    /// It takes the caller's reference and lets go of it before it counts
    /// itself done, so that a stop waiting for it finds the members free.
    /// An array being stopped collects nothing (`ENOENT`).
    pub(crate) fn collect(
        this: Arc<Self>,
        percent: u64,
        pick: crate::alloc::Pick,
    ) -> Result<gc::Outcome> {
        // A stop waits for it, as for the workers. Both this and the stop's
        // flag are full barriers: either the stop sees the count, or this
        // sees the flag.
        this.busy.0.fetch_add(1, Full);
        let r = {
            let _one = this.gc_lock.lock();
            if this.stopping.load(Relaxed) {
                Err(ENOENT)
            } else {
                let target = gc::share(this.writer.space_stats().total, percent);
                let r = crate::blk::noio(|| gc::run(&this, target, pick, None));
                this.writer.gc_ended(r.as_ref().map_or(0, |o| o.freed));
                r
            }
        };
        Busy::finished(this);
        r
    }

    /// Hands `d` to a worker: reads to the read worker, the rest to the
    /// deferral worker.
    pub(crate) fn defer(this: &Arc<Self>, d: Deferred) {
        let is_read = matches!(d, Deferred::Read { .. });
        let list = if is_read { &this.reads } else { &this.deferred };
        if let Err(d) = list.push(d) {
            // Cannot happen: no disk exists before room for its tags.
            pr_err!("too many deferred requests\n");
            let (Deferred::Write { fan, .. }
            | Deferred::Flush { fan }
            | Deferred::Read { fan, .. }) = d;
            fan.fail(Status::from_error(EIO));
            return;
        }
        // Already queued: that run will see this request too.
        if is_read {
            Self::kick(this, |a| wq::queue(Kind::Reads).enqueue::<_, 3>(a));
        } else {
            Self::kick(this, |a| wq::queue(Kind::Defer).enqueue::<_, 1>(a));
        }
    }

    /// Queues a work item with `enqueue`, counted as busy until it has run;
    /// returns whether it was queued (not already waiting to run).
    pub(super) fn kick(
        this: &Arc<Self>,
        enqueue: impl FnOnce(Arc<Self>) -> Result<(), Arc<Self>>,
    ) -> bool {
        this.busy.0.add(1, Relaxed);
        if enqueue(this.clone()).is_ok() {
            return true;
        }
        this.busy.0.fetch_sub(1, Release);
        false
    }

    /// Makes room in the lists of waiting requests for the tags of one
    /// more disk, which the caller is about to add.
    ///
    /// Disks are added and deleted by one caller at a time: at assembly,
    /// before the array is in the controller's table, and later by the
    /// control operation that holds the array's number as busy.
    pub(crate) fn room_for_disk(&self) -> Result {
        let want = self
            .disks
            .load(Relaxed)
            .checked_add(1)
            .and_then(|d| d.checked_mul(TAGS_PER_DISK))
            .ok_or(ENOMEM)?;
        self.deferred.grow(want)?;
        self.reads.grow(want)?;
        self.disks.add(1, Relaxed);
        Ok(())
    }

    /// Gives back the room [`Self::room_for_disk`] made, once the disk is
    /// deleted; the lists keep their capacity for the next disk.
    pub(crate) fn disk_gone(&self) {
        self.disks.fetch_sub(1, Relaxed);
    }

    /// Serves a deferred request, waiting as needed (worker context).
    pub(super) fn serve_deferred(self: &Arc<Self>, d: Deferred) {
        let io = self.io();
        let (fan, r) = match d {
            Deferred::Write {
                fan,
                vol,
                lba,
                n,
                done,
                fua,
                trim,
            } => {
                let r = crate::blk::noio(|| {
                    self.writer.prepare(&vol, lba, n, !trim, GFP_KERNEL)?;
                    let src = if trim {
                        Source::Trim
                    } else {
                        Source::Host(&fan)
                    };
                    self.writer
                        .write(self, &io, &vol, lba, n, done, src, true)?;
                    if fua {
                        self.writer.flush(self, &io)?;
                    }
                    Ok(())
                });
                (fan, r)
            }
            Deferred::Flush { fan } => {
                let r = crate::blk::noio(|| self.writer.flush(self, &io));
                (fan, r)
            }
            Deferred::Read { fan, vol } => {
                let r = crate::blk::noio(|| crate::volume::read(self, &vol, &fan));
                (fan, r)
            }
        };
        if let Err(e) = r {
            fan.fail(Status::from_error(e));
        }
    }
}
