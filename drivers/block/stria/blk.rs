// SPDX-License-Identifier: GPL-2.0

//! The thin unsafe layer between stria and the kernel's block layer.
//!
//! The kernel's `kernel::block::mq` cannot set tag-set flags, queue limits or
//! the write-cache/FUA features, cannot read a request's position, length or
//! operation, cannot end a request with an error, and has no bio or block
//! device types.  A stacking driver needs all of that, so this module wraps
//! the raw `kernel::bindings` (and the one-line C helpers in
//! `stria_helpers.c`) in small safe types.  Every `unsafe` block of the driver
//! lives below this module; everything above it is safe Rust.

use kernel::bindings;

mod abi;
pub(crate) mod bdev;
pub(crate) mod bio;
pub(crate) mod disk;
mod ffi;
pub(crate) mod iobuf;
pub(crate) mod misc;
pub(crate) mod request;
pub(crate) mod wq;

/// `REQ_OP_MASK`: the operation bits of a request's or bio's flags.
const REQ_OP_MASK: u32 = (1 << bindings::REQ_OP_BITS) - 1;
/// `REQ_FUA`, built from its bit number (the macro is not in the bindings).
const REQ_FUA: u32 = 1 << bindings::req_flag_bits___REQ_FUA;

/// Runs `f` with memory reclaim kept from issuing I/O, as a worker serving
/// the volumes' requests must: reclaim might write to those very volumes.
pub(crate) fn noio<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: Saving the task's allocation scope has no other effect.
    let flags = unsafe { ffi::stria_memalloc_noio_save() };
    let r = f();
    // SAFETY: Restores the scope saved above, on the same task.
    unsafe { ffi::stria_memalloc_noio_restore(flags) };
    r
}

/// Lets the scheduler run another task if one is due, between steps of
/// long work in process context (a kernel without full preemption runs
/// nothing else on this CPU meanwhile). Never call it under a spinlock.
pub(crate) fn resched() {
    // SAFETY: `cond_resched` takes no arguments and only may sleep; a
    // caller under a spinlock is a bug the kernel reports, not undefined
    // behaviour.
    unsafe { ffi::stria_cond_resched() };
}

/// Wall-clock time in seconds since the epoch, for on-disk timestamps.
pub(crate) fn wall_clock_seconds() -> u64 {
    // SAFETY: Reading the clock has no preconditions.
    let t = unsafe { kernel::bindings::ktime_get_real_seconds() };
    u64::try_from(t).unwrap_or(0)
}

/// A block-layer completion status (`blk_status_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Status(u8);

impl Status {
    /// Success.
    pub(crate) const OK: Status = Status(0);

    /// The status the block layer uses for `err` (for example `EIO`).
    pub(crate) fn from_error(err: kernel::error::Error) -> Status {
        // SAFETY: `errno_to_blk_status` is a pure table lookup.
        Status(unsafe { kernel::bindings::errno_to_blk_status(err.to_errno()) })
    }

    /// The status for an operation the driver does not support.
    pub(crate) fn not_supported() -> Status {
        Status::from_error(kernel::error::Error::from_errno(
            -(kernel::bindings::EOPNOTSUPP as i32),
        ))
    }

    /// Whether this status reports a failure.
    pub(crate) fn is_err(self) -> bool {
        self.0 != 0
    }

    fn raw(self) -> u8 {
        self.0
    }
}
