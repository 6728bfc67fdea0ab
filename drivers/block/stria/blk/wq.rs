// SPDX-License-Identifier: GPL-2.0

//! The driver's own workqueues, one per kind of work.
//!
//! Their workers serve writeback: they build and submit stripes, serve
//! requests `queue_rq` could not finish without sleeping, finish written
//! stripes and collect free space. Under memory pressure the shared system
//! queues may have no worker to spare, so each queue is created with a
//! rescuer (`WQ_MEM_RECLAIM`). Kinds of work wait on each other (a deferred
//! write for a stripe buffer that finishing written stripes gives back,
//! collection for both), and one rescuer runs one item at a time: were they
//! on one queue, the rescuer could sit in an item that waits for another
//! behind it. So each kind has a queue, and with it a rescuer, of its own
//! (see `Documentation/core-api/workqueue.rst`). The queues are unbound so
//! that stripe building runs beside the CPU that packs host writes.

use super::ffi;
use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::atomic::Acquire;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Full;
use kernel::workqueue::Queue;

/// A kind of work, each served by its own queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Finishing written stripes: what gives stripe buffers back.
    Complete,
    /// Requests `queue_rq` deferred: writes waiting for room, flushes.
    Defer,
    /// Writing the stripes `queue_rq` filled.
    Stripes,
    /// Host reads, which submit member bios.
    Reads,
    /// Free-space collection.
    Collect,
}

/// Every kind, in the order of [`QUEUES`].
const KINDS: [(Kind, &CStr); 5] = [
    (Kind::Complete, c"stria_complete"),
    (Kind::Defer, c"stria_defer"),
    (Kind::Stripes, c"stria_stripes"),
    (Kind::Reads, c"stria_reads"),
    (Kind::Collect, c"stria_collect"),
];

/// The queues while the module is loaded, by [`Kind`]; null before and
/// after.
static QUEUES: [Atomic<*mut bindings::workqueue_struct>; 5] = [
    Atomic::new(core::ptr::null_mut()),
    Atomic::new(core::ptr::null_mut()),
    Atomic::new(core::ptr::null_mut()),
    Atomic::new(core::ptr::null_mut()),
    Atomic::new(core::ptr::null_mut()),
];

/// Ownership of the driver's workqueues, from module init to module exit.
///
/// # Invariants
///
/// While a `Registration` exists, every entry of `QUEUES` points at a live
/// workqueue that it created.
pub(crate) struct Registration(());

impl Registration {
    /// Creates the workqueues; there is one set per module.
    pub(crate) fn new() -> Result<Self> {
        let flags = bindings::wq_flags_WQ_MEM_RECLAIM
            | bindings::wq_flags_WQ_HIGHPRI
            | bindings::wq_flags_WQ_UNBOUND;
        for (i, (slot, (_, name))) in QUEUES.iter().zip(KINDS.iter()).enumerate() {
            // SAFETY: The name is a static NUL-terminated string.
            let wq = unsafe { ffi::stria_alloc_workqueue(name.as_char_ptr(), flags) };
            let err = if wq.is_null() {
                ENOMEM
            } else if slot.cmpxchg(core::ptr::null_mut(), wq, Full).is_err() {
                // SAFETY: Created above and never shared.
                unsafe { bindings::destroy_workqueue(wq) };
                EBUSY
            } else {
                continue;
            };
            // Only the queues made here: any others are somebody else's.
            for made in QUEUES.iter().take(i) {
                destroy(made);
            }
            return Err(err);
        }
        // INVARIANT: Every entry points at a queue just created.
        Ok(Self(()))
    }
}

/// Destroys the queue `slot` points at, if any, and clears it.
fn destroy(slot: &Atomic<*mut bindings::workqueue_struct>) {
    let wq = slot.xchg(core::ptr::null_mut(), Full);
    if !wq.is_null() {
        // SAFETY: Only this module's registration sets the slots, with
        // queues it created; the swap above makes this the only user left
        // of this one. Destroying it first runs every work item queued.
        unsafe { bindings::destroy_workqueue(wq) };
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // By the type invariant the queues are this registration's.
        for slot in QUEUES.iter() {
            destroy(slot);
        }
    }
}

/// The queue work of kind `kind` goes to.
///
/// Work items hold what they work on, so everything they need outlives
/// them; module exit drains the queues before the module's code goes away.
/// Without the registration (which module init creates before any array
/// exists) the kernel's unbound system queue stands in.
pub(crate) fn queue(kind: Kind) -> &'static Queue {
    let at = KINDS.iter().position(|(k, _)| *k == kind);
    let wq = at
        .and_then(|i| QUEUES.get(i))
        .map_or(core::ptr::null_mut(), |q| q.load(Acquire));
    if wq.is_null() {
        return kernel::workqueue::system_unbound();
    }
    // SAFETY: Non-null, so registered: the queue lives until module exit,
    // which destroys it only after every user of the driver is gone.
    unsafe { Queue::from_raw(wq) }
}
