// SPDX-License-Identifier: GPL-2.0

//! The driver's own workqueue.
//!
//! Its workers serve writeback: they build and submit stripes, serve
//! requests `queue_rq` could not finish without sleeping, and finish
//! written stripes. Under memory pressure the shared system queues may
//! have no worker to spare, so this one is created with a rescuer
//! (`WQ_MEM_RECLAIM`); it is unbound so that stripe building runs beside
//! the CPU that packs host writes.

use super::ffi;
use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::atomic::Acquire;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Full;
use kernel::workqueue::Queue;

/// The queue while the module is loaded; null before and after.
static QUEUE: Atomic<*mut bindings::workqueue_struct> = Atomic::new(core::ptr::null_mut());

/// Ownership of the driver's workqueue, from module init to module exit.
///
/// # Invariants
///
/// While a `Registration` exists, `QUEUE` points at a live workqueue that
/// it created.
pub(crate) struct Registration(());

impl Registration {
    /// Creates the workqueue; there is one per module.
    pub(crate) fn new() -> Result<Self> {
        let flags = bindings::wq_flags_WQ_MEM_RECLAIM
            | bindings::wq_flags_WQ_HIGHPRI
            | bindings::wq_flags_WQ_UNBOUND;
        // SAFETY: The name is a static NUL-terminated string.
        let wq = unsafe { ffi::stria_alloc_workqueue(c"stria".as_char_ptr(), flags) };
        if wq.is_null() {
            return Err(ENOMEM);
        }
        if QUEUE.cmpxchg(core::ptr::null_mut(), wq, Full).is_err() {
            // SAFETY: Created above and never shared.
            unsafe { bindings::destroy_workqueue(wq) };
            return Err(EBUSY);
        }
        // INVARIANT: `QUEUE` points at the queue just created.
        Ok(Self(()))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let wq = QUEUE.xchg(core::ptr::null_mut(), Full);
        if !wq.is_null() {
            // SAFETY: By the type invariant the queue is live and ours;
            // destroying it first runs every work item still queued.
            unsafe { bindings::destroy_workqueue(wq) };
        }
    }
}

/// The queue the driver's work items go to.
///
/// Work items hold what they work on, so everything they need outlives
/// them; module exit drains the queue before the module's code goes away.
/// Without the registration (which module init creates before any array
/// exists) the kernel's unbound system queue stands in.
pub(crate) fn queue() -> &'static Queue {
    let wq = QUEUE.load(Acquire);
    if wq.is_null() {
        return kernel::workqueue::system_unbound();
    }
    // SAFETY: Non-null, so registered: the queue lives until module exit,
    // which destroys it only after every user of the driver is gone.
    unsafe { Queue::from_raw(wq) }
}
