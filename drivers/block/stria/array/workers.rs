// SPDX-License-Identifier: GPL-2.0

//! The array's work items: completions, stripe writes and free-space
//! collection, each on its own queue.

use super::Array;
use crate::blk::iobuf::BatchDone;
use crate::blk::wq;
use crate::blk::wq::Kind;
use crate::blk::Status;
use crate::gc;
use crate::writer::Owner;
use kernel::prelude::*;
use kernel::sync::atomic::Acquire;
use kernel::sync::atomic::Full;
use kernel::sync::atomic::Relaxed;
use kernel::sync::atomic::Release;
use kernel::sync::Arc;
use kernel::workqueue::WorkItem;

kernel::impl_has_work! {
    impl HasWork<Self, 0> for Array { self.work }
    impl HasWork<Self, 1> for Array { self.stripe_work }
    impl HasWork<Self, 2> for Array { self.gc_work }
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
        this.busy.clone().finished(this);
    }
}

impl WorkItem<1> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        crate::blk::noio(|| this.writer.write_ready(&this, &this.io()));
        this.busy.clone().finished(this);
    }
}

impl WorkItem<2> for Array {
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
        this.busy.clone().finished(this);
    }
}

impl Owner for Array {
    fn stripes_ready(this: &Arc<Self>) {
        // Already queued: that run will see these stripes too.
        Self::kick(this, |a| wq::queue(Kind::Stripes).enqueue::<_, 1>(a));
    }

    fn need_space(this: &Arc<Self>) {
        if this.stopping.load(Acquire) {
            return;
        }
        // Counted before it can run; if already queued, writers wait for
        // the end of that run.
        this.gc_queued.add(1, Relaxed);
        if !Self::kick(this, |a| wq::queue(Kind::Collect).enqueue::<_, 2>(a)) {
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
        this.busy.clone().finished(this);
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
                let target = gc::share(this.writer.free_and_total().1, percent);
                let r = crate::blk::noio(|| gc::run(&this, target, pick, None));
                this.writer.gc_ended(r.as_ref().map_or(0, |o| o.freed));
                r
            }
        };
        this.busy.clone().finished(this);
        r
    }

    /// Queues a work item with `enqueue`, counted as busy until it has run;
    /// returns whether it was queued (not already waiting to run).
    pub(super) fn kick(
        this: &Arc<Self>,
        enqueue: impl FnOnce(Arc<Self>) -> Result<(), Arc<Self>>,
    ) -> bool {
        this.busy.kick(this.clone(), enqueue)
    }
}
