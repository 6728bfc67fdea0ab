// SPDX-License-Identifier: GPL-2.0

//! Spinlocks that remember their longest hold.
//!
//! Everything under the writer's lock and a volume map's lock delays the
//! submit path, which takes both; an array reports the longest holds when
//! it stops, so that work grown too long under them shows on a real pool.

use core::ops::Deref;
use core::ops::DerefMut;
use kernel::prelude::*;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Relaxed;
use kernel::sync::lock::spinlock::SpinLockBackend;
use kernel::sync::lock::Guard;
use kernel::sync::CondVar;
use kernel::sync::SpinLock;
use kernel::time::Instant;
use kernel::time::Monotonic;

/// A spinlock and the longest time it was held, in nanoseconds.
#[pin_data]
pub(crate) struct Timed<T> {
    #[pin]
    lock: SpinLock<T>,
    longest: Atomic<i64>,
}

impl<T> Timed<T> {
    /// Wraps `lock`.
    pub(crate) fn new(lock: impl PinInit<SpinLock<T>>) -> impl PinInit<Self> {
        pin_init!(Self {
            lock <- lock,
            longest: Atomic::new(0),
        })
    }

    /// Takes the lock.
    pub(crate) fn lock(&self) -> TimedGuard<'_, T> {
        let guard = self.lock.lock();
        TimedGuard {
            guard,
            since: Instant::now(),
            longest: &self.longest,
        }
    }

    /// The longest hold so far, in microseconds (rounded up).
    pub(crate) fn longest_us(&self) -> u64 {
        let ns = self.longest.load(Relaxed);
        u64::try_from(ns).unwrap_or(0).div_ceil(1000)
    }
}

/// A held [`Timed`] lock; the hold is measured until it is dropped.
pub(crate) struct TimedGuard<'a, T> {
    guard: Guard<'a, T, SpinLockBackend>,
    since: Instant<Monotonic>,
    longest: &'a Atomic<i64>,
}

impl<T> TimedGuard<'_, T> {
    /// Records the hold up to now.
    fn record(&self) {
        let ns = self.since.elapsed().as_nanos();
        let mut cur = self.longest.load(Relaxed);
        while ns > cur {
            match self.longest.cmpxchg(cur, ns, Relaxed) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
    }

    /// Waits on `cv`, the lock released meanwhile; the wait is no hold.
    pub(crate) fn wait(&mut self, cv: &CondVar) {
        self.record();
        cv.wait(&mut self.guard);
        self.since = Instant::now();
    }
}

impl<T> Deref for TimedGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: Unpin> DerefMut for TimedGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for TimedGuard<'_, T> {
    fn drop(&mut self) {
        self.record();
    }
}
