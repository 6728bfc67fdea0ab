// SPDX-License-Identifier: GPL-2.0

//! Spinlocks that remember their longest hold.
//!
//! Everything under the writer's lock and a volume map's lock delays the
//! submit path, which takes both; an array reports the longest holds when
//! it stops, so that work grown too long under them shows on a real pool.

use core::ops::Deref;
use core::ops::DerefMut;
use core::panic::Location;
use kernel::prelude::*;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Relaxed;
use kernel::sync::lock::spinlock::SpinLockBackend;
use kernel::sync::lock::Guard;
use kernel::sync::CondVar;
use kernel::sync::SpinLock;
use kernel::time::Instant;
use kernel::time::Monotonic;

/// Where a lock was taken.
pub(crate) type Site = &'static Location<'static>;

/// The longest hold of a lock, in nanoseconds, and where it was taken.
#[pin_data]
struct Longest {
    ns: Atomic<i64>,
    #[pin]
    site: SpinLock<Option<Site>>,
}

/// A spinlock and its longest hold.
#[pin_data]
pub(crate) struct Timed<T> {
    #[pin]
    lock: SpinLock<T>,
    #[pin]
    longest: Longest,
}

impl<T> Timed<T> {
    /// Wraps `lock`.
    pub(crate) fn new(lock: impl PinInit<SpinLock<T>>) -> impl PinInit<Self> {
        pin_init!(Self {
            lock <- lock,
            longest <- pin_init!(Longest {
                ns: Atomic::new(0),
                site <- kernel::new_spinlock!(None),
            }),
        })
    }

    /// Takes the lock; a hold that is the longest so far keeps the place
    /// of the caller's caller too (through `#[track_caller]` wrappers).
    #[track_caller]
    pub(crate) fn lock(&self) -> TimedGuard<'_, T> {
        let site = Location::caller();
        let guard = self.lock.lock();
        TimedGuard {
            guard,
            since: Instant::now(),
            site,
            longest: &self.longest,
        }
    }

    /// The longest hold so far, in microseconds (rounded up), and where
    /// the lock was taken for it.
    pub(crate) fn longest(&self) -> (u64, Option<Site>) {
        let ns = self.longest.ns.load(Relaxed);
        let us = u64::try_from(ns).unwrap_or(0).div_ceil(1000);
        (us, *self.longest.site.lock())
    }

    /// Forgets the holds so far: those of an assembly, before any request.
    pub(crate) fn reset(&self) {
        self.longest.ns.store(0, Relaxed);
        *self.longest.site.lock() = None;
    }
}

/// A held [`Timed`] lock; the hold is measured until it is dropped.
pub(crate) struct TimedGuard<'a, T> {
    guard: Guard<'a, T, SpinLockBackend>,
    since: Instant<Monotonic>,
    site: Site,
    longest: &'a Longest,
}

impl<T> TimedGuard<'_, T> {
    /// Records the hold up to now.
    fn record(&self) {
        let ns = self.since.elapsed().as_nanos();
        let mut cur = self.longest.ns.load(Relaxed);
        while ns > cur {
            match self.longest.ns.cmpxchg(cur, ns, Relaxed) {
                Ok(_) => {
                    // Rare: only a new longest hold takes this lock.
                    *self.longest.site.lock() = Some(self.site);
                    break;
                }
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
