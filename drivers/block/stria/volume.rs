// SPDX-License-Identifier: GPL-2.0

//! A volume's block device: its requests, served through the array.

use crate::array::Array;
use crate::array::Deferred;
use crate::blk::bio::Bio;
use crate::blk::bio::BioOp;
use crate::blk::disk::Operations;
use crate::blk::request::Fanout;
use crate::blk::request::Op;
use crate::blk::request::Request;
use crate::blk::Status;
use crate::format::geometry::BLOCK_SHIFT;
use crate::format::geometry::BLOCK_SIZE;
use crate::format::geometry::SECTORS_PER_BLOCK;
use crate::map::Entry;
use crate::writer::HostData;
use crate::writer::Source;
use crate::writer::Volume;
use kernel::prelude::*;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;
use kernel::sync::ArcBorrow;
use kernel::sync::Mutex;

/// Vectors of a member read bio: a megabyte request split at every 4 KiB
/// block and page boundary stays below it.
const READ_VECS: u16 = 256;
/// Most vectors one block of a request can take (512-byte segments).
const VECS_PER_BLOCK: u16 = SECTORS_PER_BLOCK as u16;

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
            }),
            GFP_KERNEL,
        )
    }

    /// The array it belongs to.
    pub(crate) fn array(&self) -> &Arc<Array> {
        &self.array
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
    fn write(&self, fan: Fanout<Self>, fua: bool, trim: bool) {
        let a = &self.array;
        let (lba, n) = match self.blocks_of(&fan) {
            Ok(r) => r,
            Err(e) => return fan.fail(Status::from_error(e)),
        };
        let deferred = |fan, done| Deferred::Write {
            fan,
            vol: self.vol.clone(),
            lba,
            n,
            done,
            fua,
            trim,
        };
        // Trims only clear entries: they need no new leaves, only their
        // own copies of leaves shared with a copy.
        if a.writer()
            .prepare(&self.vol, lba, n, !trim, GFP_NOWAIT | __GFP_NOWARN)
            .is_err()
        {
            // The worker allocates the map's leaves, waiting if it must.
            return Array::defer(a, deferred(fan, 0));
        }
        let src = if trim {
            Source::Trim
        } else {
            Source::Host(&fan)
        };
        let r = a
            .writer()
            .write(a, &a.io(), &self.vol, lba, n, 0, src, false);
        match r {
            Err(e) => fan.fail(Status::from_error(e)),
            Ok(done) if done < n => Array::defer(a, deferred(fan, done)),
            Ok(_) if fua => Array::defer(a, Deferred::Flush { fan }),
            Ok(_) => {}
        }
    }
}

/// Serves read request `fan` of `vol` through the map: unwritten blocks as
/// zeros, blocks of stripes still being written from memory, the rest from
/// the members, contiguous member blocks in one bio. Worker context: it
/// allocates and submits bios.
pub(crate) fn read(array: &Array, vol: &Volume, fan: &Fanout<VolumeDev>) -> Result {
    let spb = SECTORS_PER_BLOCK;
    let block = BLOCK_SIZE as u64;
    let mut pos = fan.sector() / spb * block;
    // Before any lookup: space freed from now on waits for this read.
    fan.set_cookie(array.writer().reads().enter());
    // (member, next member byte, vectors used, bio)
    let mut cur: Option<(u8, u64, u16, Bio)> = None;
    for seg in fan.segments() {
        let mut done = 0u32;
        while done < seg.len() {
            let inb = pos % block;
            let n = (seg.len() - done).min((block - inb) as u32);
            let piece = seg.slice(done, n).ok_or(EIO)?;
            let mut map = vol.map.lock();
            match map.get(pos / block) {
                Entry::Unmapped => {
                    drop(map);
                    if !piece.zero() {
                        return Err(EIO);
                    }
                }
                Entry::Mem { slot, offset } => {
                    let off = offset as usize * BLOCK_SIZE + inb as usize;
                    let ok = array.writer().read_mem(slot, off, &piece);
                    drop(map);
                    if !ok {
                        pr_err!("buffered block {} unreadable\n", pos / block);
                        return Err(EIO);
                    }
                }
                Entry::Disk {
                    member,
                    block: mblock,
                } => {
                    drop(map);
                    let at = mblock * block + inb;
                    let fits = matches!(&cur, Some((m, next, used, _))
                        if *m == member && *next == at
                            && (inb != 0 || *used + VECS_PER_BLOCK <= READ_VECS));
                    if !fits {
                        let m = array.member(member).ok_or(EIO)?;
                        let mut bio =
                            fan.new_bio(array.bioset(), &m.bdev, BioOp::Read, READ_VECS)?;
                        if let Some((_, _, _, b)) = cur.take() {
                            fan.submit(b);
                        }
                        bio.set_sector(at / 512);
                        cur = Some((member, at, 0, bio));
                    }
                    let Some((_, next, used, bio)) = cur.as_mut() else {
                        return Err(EIO);
                    };
                    if !bio.add(&piece) {
                        pr_err!("member bio full at block {}\n", pos / block);
                        return Err(EIO);
                    }
                    *next += u64::from(n);
                    *used += 1;
                }
            }
            pos += u64::from(n);
            done += n;
        }
    }
    if let Some((_, _, _, bio)) = cur.take() {
        fan.submit(bio);
    }
    Ok(())
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
                Array::defer(&this.array, Deferred::Flush { fan });
            }
            Op::Read => {
                c.reads.add(1, Relaxed);
                // Member bios are submitted by a worker: submission may
                // sleep, and `queue_rq` must not.
                Array::defer(
                    &this.array,
                    Deferred::Read {
                        fan,
                        vol: this.vol.clone(),
                    },
                );
            }
            Op::Write => {
                c.writes.add(1, Relaxed);
                this.write(fan, fua, false);
            }
            Op::Discard | Op::WriteZeroes => {
                c.writes.add(1, Relaxed);
                this.write(fan, fua, true);
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
