// SPDX-License-Identifier: GPL-2.0

//! Requests of a volume that `queue_rq` cannot finish, and the two work
//! items that serve them: reads, and writes and flushes that must wait.

use super::VolumeDev;
use crate::blk::disk::QUEUE_DEPTH;
use crate::blk::request::Fanout;
use crate::blk::wq;
use crate::blk::wq::Kind;
use crate::blk::Status;
use crate::writer::Source;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::sync::ArcBorrow;
use kernel::sync::Mutex;
use kernel::sync::SpinLock;
use kernel::workqueue::WorkItem;

/// Requests of one disk that can wait at once: one per tag.
const TAGS: usize = QUEUE_DEPTH as usize;

/// Requests waiting for a worker, oldest first.
///
/// `queue_rq` adds to `list` without allocating, so it has room for every
/// tag of the disk: a request waits in one list at a time, and only once.
/// The worker swaps the whole list with `spare` and serves that outside
/// the spinlock, so that neither side moves the requests left behind one
/// taken.
///
/// # Invariants
///
/// `list` and `spare` each have room for [`TAGS`] requests, and `spare` is
/// empty whenever its mutex is free.
#[pin_data]
pub(super) struct Waiting<T> {
    #[pin]
    list: SpinLock<KVVec<T>>,
    #[pin]
    spare: Mutex<KVVec<T>>,
}

impl<T> Waiting<T> {
    /// Two empty lists with room for every tag.
    pub(super) fn new() -> impl PinInit<Self, Error> {
        // INVARIANT: both are allocated with room for every tag.
        try_pin_init!(Self {
            list <- kernel::new_spinlock!(KVVec::with_capacity(TAGS, GFP_KERNEL)?),
            spare <- kernel::new_mutex!(KVVec::with_capacity(TAGS, GFP_KERNEL)?),
        }? Error)
    }

    /// Queues `d`, or hands it back if there is no room (atomic context).
    fn push(&self, d: T) -> Result<(), T> {
        self.list
            .lock()
            .push_within_capacity(d)
            .map_err(|kernel::alloc::kvec::PushError(d)| d)
    }

    /// Runs `serve` on every request queued, oldest first, until none is
    /// left (worker context).
    fn serve_all(&self, mut serve: impl FnMut(T)) {
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
        // INVARIANT: `batch` is empty again when its guard drops, and the
        // swaps only exchanged the two allocations.
    }
}

/// A write or flush `queue_rq` cannot finish, handed to a worker.
///
/// `queue_rq` must not sleep, and it may run inside the submission of a bio
/// to the volume, where member bios are only queued until it returns:
/// waiting there for a stripe buffer or a flush would wait for itself.
pub(super) enum Deferred {
    /// A write that found no free stripe buffer after `done` blocks.
    Write {
        /// The request.
        fan: Fanout<VolumeDev>,
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
}

kernel::impl_has_work! {
    impl HasWork<Self, 0> for VolumeDev { self.defer_work }
    impl HasWork<Self, 1> for VolumeDev { self.read_work }
}

impl WorkItem<0> for VolumeDev {
    type Pointer = Arc<VolumeDev>;

    fn run(this: Arc<VolumeDev>) {
        this.deferred.serve_all(|d| this.serve(d));
        this.array.busy().clone().finished(this);
    }
}

impl WorkItem<1> for VolumeDev {
    type Pointer = Arc<VolumeDev>;

    fn run(this: Arc<VolumeDev>) {
        this.reads.serve_all(|fan| {
            if let Err(e) = crate::blk::noio(|| this.read(&fan)) {
                fan.fail(Status::from_error(e));
            }
        });
        this.array.busy().clone().finished(this);
    }
}

/// Ends `fan` with an error: its list had no room, which no disk allows.
fn overflow(fan: Fanout<VolumeDev>) {
    pr_err!("too many deferred requests\n");
    fan.fail(Status::from_error(EIO));
}

impl VolumeDev {
    /// Hands write or flush `d` to the deferral worker (atomic context).
    pub(super) fn defer(this: ArcBorrow<'_, Self>, d: Deferred) {
        if let Err(d) = this.deferred.push(d) {
            let (Deferred::Write { fan, .. } | Deferred::Flush { fan }) = d;
            return overflow(fan);
        }
        // Already queued: that run will see this request too.
        this.array
            .busy()
            .kick(this.into(), |d| wq::queue(Kind::Defer).enqueue::<_, 0>(d));
    }

    /// Hands read `fan` to the read worker (atomic context): it submits
    /// member bios, which may sleep.
    pub(super) fn defer_read(this: ArcBorrow<'_, Self>, fan: Fanout<Self>) {
        if let Err(fan) = this.reads.push(fan) {
            return overflow(fan);
        }
        this.array
            .busy()
            .kick(this.into(), |d| wq::queue(Kind::Reads).enqueue::<_, 1>(d));
    }

    /// Serves a deferred write or flush, waiting as needed (worker
    /// context).
    fn serve(&self, d: Deferred) {
        let a = &self.array;
        let io = a.io();
        let (fan, r) = match d {
            Deferred::Write {
                fan,
                lba,
                n,
                done,
                fua,
                trim,
            } => {
                let r = crate::blk::noio(|| {
                    a.writer().prepare(&self.vol, lba, n, !trim, GFP_KERNEL)?;
                    let src = if trim {
                        Source::Trim
                    } else {
                        Source::Host(&fan)
                    };
                    a.writer()
                        .write(a, &io, &self.vol, lba, n, done, src, true)?;
                    if fua {
                        a.writer().flush(a, &io)?;
                    }
                    Ok(())
                });
                (fan, r)
            }
            Deferred::Flush { fan } => {
                let r = crate::blk::noio(|| a.writer().flush(a, &io));
                (fan, r)
            }
        };
        if let Err(e) = r {
            fan.fail(Status::from_error(e));
        }
    }
}
