// SPDX-License-Identifier: GPL-2.0

//! Grace periods for reads of member blocks.
//!
//! A read looks a block up in a volume's map, drops the map's lock and
//! only then builds and submits its member bio, which may wait in the
//! member's queue for a long time. Free-space collection may move the
//! block meanwhile and free its chunk; if a new stripe were written there
//! before the read reached the member, the read would return that stripe's
//! data — possibly another volume's. So space freed from now on waits for
//! every read that started before: reads enter an epoch before they look
//! anything up and leave it when their request completes; a dead stripe is
//! tagged with the epoch current when it is retired, and its chunks are
//! reused only once every read of that epoch or an older one has left.
//!
//! Two counters do, as in the kernel's SRCU: the epoch moves on from `e` to
//! `e + 1` only when no read of `e - 1` is left, so that at any time only the
//! reads of the current epoch and of the one before can be in flight, each
//! counted in its own slot.

use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::sync::atomic::Acquire;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Full;
use kernel::sync::SpinLock;

/// The epochs of the reads of one array.
///
/// # Invariants
///
/// With `epoch` at `e`, no read of an epoch below `e - 1` is in flight, and
/// `active[x % 2]` counts the reads in flight of epoch `x`, for `x` in
/// `e - 1` and `e`.
#[pin_data]
pub(crate) struct Reads {
    /// The current epoch; starts at 1 (no read is ever of epoch 0).
    #[pin]
    epoch: SpinLock<u64>,
    /// Reads in flight, by the parity of their epoch.
    active: [Atomic<u64>; 2],
}

/// What a read that entered an epoch keeps to leave it: 0 for none, else
/// the slot plus one, so that it fits in a request's driver word.
pub(crate) type Pass = u32;

/// The slot of epoch `e`.
fn slot(e: u64) -> usize {
    usize::from(e % 2 == 1)
}

impl Reads {
    /// No read in flight, in epoch 1.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            epoch <- new_spinlock!(1u64),
            active: [Atomic::new(0), Atomic::new(0)],
        })
    }

    /// A read starts: it must enter before it looks up any block.
    pub(crate) fn enter(&self) -> Pass {
        // Under the lock, so that no read enters an epoch the epoch has
        // moved past while `advance` looks at its count.
        let e = self.epoch.lock();
        let s = slot(*e);
        if let Some(a) = self.active.get(s) {
            a.fetch_add(1, Full);
        }
        // `s` is 0 or 1.
        s as Pass + 1
    }

    /// A read that entered with `pass` has completed. Any context: it
    /// only touches an atomic.
    pub(crate) fn leave(&self, pass: Pass) {
        let Some(a) = (pass as usize)
            .checked_sub(1)
            .and_then(|s| self.active.get(s))
        else {
            return;
        };
        a.fetch_sub(1, Full);
    }

    /// Moves the epoch on as far as the reads in flight allow; returns the
    /// epoch before and the first epoch that may still have reads in
    /// flight: space retired in an epoch below that can be reused.
    pub(crate) fn advance(&self) -> (u64, u64) {
        let mut e = self.epoch.lock();
        let before = *e;
        // At most twice: then the slot to empty is that of the reads of
        // the current epoch, which may have entered since.
        for _ in 0..2 {
            let older = (*e).saturating_sub(1);
            if self
                .active
                .get(slot(older))
                .is_some_and(|a| a.load(Acquire) != 0)
            {
                break;
            }
            // INVARIANT: No read of `e - 1` is left, and none can enter it:
            // entering takes the lock and goes to the current epoch.
            *e = e.saturating_add(1);
        }
        (before, (*e).saturating_sub(1))
    }
}
