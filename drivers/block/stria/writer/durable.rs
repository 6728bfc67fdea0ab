// SPDX-License-Identifier: GPL-2.0

//! Flushes: a flush completes once every stripe closed before it is
//! written and every member has flushed its cache.

use super::Io;
use super::Owner;
use super::Writer;
use crate::format::header::MAX_GROUPS;
use kernel::prelude::*;
use kernel::sync::Arc;

impl Writer {
    /// Makes every stripe closed so far durable - waiting for those still
    /// being written, then flushing the members - without closing the
    /// open stripes (a flush would write them part full), and frees the
    /// dead stripes that allows.
    pub(crate) fn sync_closed(&self, io: &Io<'_>) -> Result {
        let target = {
            let mut st = self.state.lock();
            let open = st
                .open
                .iter()
                .zip(st.open_seq.iter())
                .filter_map(|(o, q)| o.map(|_| *q))
                .min();
            let target = open.unwrap_or(st.next_seq).saturating_sub(1);
            while !st.failed && st.inflight.iter().any(|&s| s <= target) {
                st.wait(&self.changed);
            }
            if st.failed {
                return Err(EIO);
            }
            target
        };
        for m in io.members {
            m.bdev.flush()?;
        }
        let mut st = self.state.lock();
        st.durable_seq = st.durable_seq.max(target);
        self.reclaim_locked(&mut st);
        Ok(())
    }

    /// Closes every open stripe and waits until every stripe closed so far
    /// is written, then flushes every member: everything acknowledged
    /// before the call is then on stable storage.
    pub(crate) fn flush<T: Owner>(&self, owner: &Arc<T>, io: &Io<'_>) -> Result {
        self.flush_with(owner, io, false, || Ok(())).map(|_| ())
    }

    /// A flush that runs `at` at its point in the log: every host piece
    /// packed before lies in a stripe below the sequence number it
    /// returns, every one packed after at or above it. `at` runs under the
    /// writer's state lock and must not sleep; with `copy`, it makes an
    /// instant copy, which [`Self::copies`] counts.
    pub(crate) fn flush_with<T: Owner>(
        &self,
        owner: &Arc<T>,
        io: &Io<'_>,
        copy: bool,
        at: impl FnOnce() -> Result,
    ) -> Result<u64> {
        let mut closing: [Option<u16>; MAX_GROUPS] = [None; MAX_GROUPS];
        let (target, point) = {
            let mut st = self.state.lock();
            for (g, c) in closing.iter_mut().enumerate() {
                *c = self.take_open(&mut st, g, true)?;
            }
            // No stripe is open now: whatever is packed next opens one
            // with a higher sequence number. The stripes closed are
            // written whatever `at` says.
            let done = at();
            if copy && done.is_ok() {
                st.copies += 1;
            }
            st.since_flush = 0;
            (st.next_seq - 1, done.map(|()| st.next_seq))
        };
        for id in closing.into_iter().flatten() {
            self.close(owner, io, id);
        }
        {
            let mut st = self.state.lock();
            while !st.failed && st.inflight.iter().any(|&s| s <= target) {
                st.wait(&self.changed);
            }
            if st.failed {
                return Err(EIO);
            }
        }
        for m in io.members {
            m.bdev.flush()?;
        }
        let mut st = self.state.lock();
        st.durable_seq = st.durable_seq.max(target);
        self.reclaim_locked(&mut st);
        point
    }
}
