// SPDX-License-Identifier: GPL-2.0

//! A volume's block device: its requests, served through the array.

mod defer;
mod read;

use crate::array::Array;
use crate::blk::disk::Operations;
use crate::blk::request::Fanout;
use crate::blk::request::Op;
use crate::blk::request::Request;
use crate::blk::Status;
use crate::format::geometry::BLOCK_SHIFT;
use crate::format::geometry::BLOCK_SIZE;
use crate::format::geometry::SECTORS_PER_BLOCK;
use crate::writer::HostData;
use crate::writer::Source;
use crate::writer::Volume;
use kernel::prelude::*;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;
use kernel::sync::ArcBorrow;
use kernel::sync::Mutex;
use kernel::workqueue::Work;

/// Who has the device open, and whether it is going away.
struct OpenState {
    openers: u32,
    closing: bool,
}

/// The block device of one volume.
#[pin_data]
pub(crate) struct VolumeDev {
    array: Arc<Array>,
    vol: Arc<Volume>,
    #[pin]
    open: Mutex<OpenState>,
    /// Writes and flushes handed to the deferral worker, in order.
    #[pin]
    deferred: defer::Waiting<defer::Deferred>,
    #[pin]
    defer_work: Work<VolumeDev, 0>,
    /// Reads, which submit member bios and so cannot be served in
    /// `queue_rq`; apart from `deferred`, where a read would wait behind
    /// writes waiting for a stripe buffer.
    #[pin]
    reads: defer::Waiting<Fanout<VolumeDev>>,
    #[pin]
    read_work: Work<VolumeDev, 1>,
}

impl VolumeDev {
    /// The device of `vol` of `array`.
    pub(crate) fn new(array: Arc<Array>, vol: Arc<Volume>) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                array,
                vol,
                open <- kernel::new_mutex!(OpenState {
                    openers: 0,
                    closing: false,
                }),
                deferred <- defer::Waiting::new(),
                defer_work <- kernel::new_work!("stria_deferred"),
                reads <- defer::Waiting::new(),
                read_work <- kernel::new_work!("stria_reads"),
            }? Error),
            GFP_KERNEL,
        )
    }

    /// The volume.
    pub(crate) fn volume(&self) -> &Arc<Volume> {
        &self.vol
    }

    /// How many times the device is open.
    pub(crate) fn openers(&self) -> u32 {
        self.open.lock().openers
    }

    /// Refuses further opens unless the device is open now (`EBUSY`).
    pub(crate) fn begin_close(&self) -> Result {
        let mut s = self.open.lock();
        if s.openers > 0 {
            return Err(EBUSY);
        }
        s.closing = true;
        Ok(())
    }

    /// Allows opens again after [`Self::begin_close`].
    pub(crate) fn cancel_close(&self) {
        self.open.lock().closing = false;
    }

    /// Host block range of a request: first block and count.
    fn blocks_of(&self, fan: &Fanout<Self>) -> Result<(u64, u64)> {
        let spb = SECTORS_PER_BLOCK;
        let sector = fan.sector();
        let bytes = u64::from(fan.bytes());
        if sector % spb != 0 || bytes % BLOCK_SIZE as u64 != 0 {
            pr_err!("request not aligned to 4 KiB blocks at sector {}\n", sector);
            return Err(EIO);
        }
        let lba = sector / spb;
        let n = bytes >> BLOCK_SHIFT;
        if lba
            .checked_add(n)
            .is_none_or(|e| e > self.vol.map.size_blocks())
        {
            pr_err!(
                "request beyond the end of the volume at sector {}\n",
                sector
            );
            return Err(EIO);
        }
        Ok((lba, n))
    }

    /// Packs a write (or, with `trim`, trim records for a discard or
    /// write-zeroes) without waiting; what must wait is deferred.
    fn write(this: ArcBorrow<'_, Self>, fan: Fanout<Self>, fua: bool, trim: bool) {
        let a = &this.array;
        let (lba, n) = match this.blocks_of(&fan) {
            Ok(r) => r,
            Err(e) => return fan.fail(Status::from_error(e)),
        };
        let deferred = |fan, done| defer::Deferred::Write {
            fan,
            lba,
            n,
            done,
            fua,
            trim,
        };
        // Trims only clear entries: they need no new leaves, only their
        // own copies of leaves shared with a copy.
        if a.writer()
            .prepare(&this.vol, lba, n, !trim, GFP_NOWAIT | __GFP_NOWARN)
            .is_err()
        {
            // The worker allocates the map's leaves, waiting if it must.
            return Self::defer(this, deferred(fan, 0));
        }
        let src = if trim {
            Source::Trim
        } else {
            Source::Host(&fan)
        };
        let r = a
            .writer()
            .write(a, &a.io(), &this.vol, lba, n, 0, src, false);
        match r {
            Err(e) => fan.fail(Status::from_error(e)),
            Ok(done) if done < n => Self::defer(this, deferred(fan, done)),
            Ok(_) if fua => Self::defer(this, defer::Deferred::Flush { fan }),
            Ok(_) => {}
        }
    }
}

impl HostData for Fanout<VolumeDev> {
    fn copy_out(&self, offset: usize, dst: &mut [u8]) -> bool {
        Fanout::copy_out(self, offset, dst)
    }
}

impl Operations for VolumeDev {
    fn queue_rq(this: ArcBorrow<'_, Self>, rq: Request<Self>) {
        let c = this.array.counters();
        let op = rq.op();
        let fua = rq.is_fua();
        let fan = rq.fan_out();
        match op {
            Op::Flush => {
                c.flushes.add(1, Relaxed);
                Self::defer(this, defer::Deferred::Flush { fan });
            }
            Op::Read => {
                c.reads.add(1, Relaxed);
                // Member bios are submitted by a worker: submission may
                // sleep, and `queue_rq` must not.
                Self::defer_read(this, fan);
            }
            Op::Write => {
                c.writes.add(1, Relaxed);
                Self::write(this, fan, fua, false);
            }
            Op::Discard | Op::WriteZeroes => {
                c.writes.add(1, Relaxed);
                Self::write(this, fan, fua, true);
            }
            Op::Other(_) => fan.fail(Status::not_supported()),
        }
    }

    fn completed(&self, status: Status, cookie: u32) {
        if status.is_err() {
            self.array.counters().errors.add(1, Relaxed);
        }
        // Only reads keep a cookie: their pass of a read epoch.
        self.array.writer().reads().leave(cookie);
    }

    fn open(&self) -> Result {
        let mut s = self.open.lock();
        if s.closing {
            return Err(ENXIO);
        }
        s.openers = s.openers.checked_add(1).ok_or(EBUSY)?;
        Ok(())
    }

    fn release(&self) {
        let mut s = self.open.lock();
        s.openers = s.openers.saturating_sub(1);
    }
}
