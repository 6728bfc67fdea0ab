// SPDX-License-Identifier: GPL-2.0

//! An assembled array: its members, its layout and its I/O path.

use crate::blk::bio::Bio;
use crate::blk::bio::BioOp;
use crate::blk::bio::BioSet;
use crate::blk::disk::Operations;
use crate::blk::disk::StackOn;
use crate::blk::request::Fanout;
use crate::blk::request::Op;
use crate::blk::request::Request;
use crate::blk::Status;
use crate::members;
use crate::members::Member;
use crate::raid0::Raid0;
use crate::uapi;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Mutex;

/// Chunk size of the static RAID-0 layout.
const CHUNK_BYTES: u64 = 64 * 1024;
/// Segments a member bio has room for: a whole chunk of 512-byte pieces.
const NR_VECS: u16 = (CHUNK_BYTES / 512) as u16;
const _: () = assert!(CHUNK_BYTES / 512 <= kernel::bindings::BIO_MAX_VECS as u64);

/// Block size of the volume.
pub(crate) const BLOCK_BYTES: u32 = crate::format::geometry::BLOCK_SIZE as u32;
/// Largest host request, in sectors (1 MiB).
pub(crate) const MAX_REQUEST_SECTORS: u32 = 2048;

/// Who has the volume open, and whether it is going away.
struct OpenState {
    openers: u32,
    stopping: bool,
}

/// I/O counters reported by STATUS.
struct Counters {
    reads: Atomic<u64>,
    writes: Atomic<u64>,
    flushes: Atomic<u64>,
    errors: Atomic<u64>,
}

/// An array of members presenting one volume.
#[pin_data]
pub(crate) struct Array {
    identity: members::Identity,
    members: KVec<Member>,
    layout: Raid0,
    #[pin]
    bioset: BioSet,
    #[pin]
    open: Mutex<OpenState>,
    counters: Counters,
}

impl Array {
    /// Claims the members named by `paths`, checks their superblocks and
    /// lays a RAID-0 volume over their data areas, in member order.
    pub(crate) fn new(paths: &[&CStr]) -> Result<impl PinInit<Self, Error>> {
        let (members, identity) = members::assemble(paths)?;
        let smallest = members.iter().map(|m| m.data_bytes).min().unwrap_or(0);
        let nr = u32::try_from(members.len()).map_err(|_| EINVAL)?;
        let layout = Raid0::new(nr, CHUNK_BYTES, smallest).ok_or_else(|| {
            pr_err!(
                "members too small: the smallest data area has {} bytes\n",
                smallest
            );
            EINVAL
        })?;
        Ok(try_pin_init!(Self {
            identity,
            members,
            layout,
            bioset <- BioSet::new(64),
            open <- kernel::new_mutex!(OpenState {
                openers: 0,
                stopping: false,
            }),
            counters: Counters {
                reads: Atomic::new(0),
                writes: Atomic::new(0),
                flushes: Atomic::new(0),
                errors: Atomic::new(0),
            },
        }))
    }

    /// Volume size in 512-byte sectors.
    pub(crate) fn capacity_sectors(&self) -> u64 {
        self.layout.capacity() / 512
    }

    /// Preferred I/O size: one chunk.
    pub(crate) fn io_min(&self) -> u32 {
        self.layout.chunk() as u32
    }

    /// Optimal I/O size: a chunk on every member.
    pub(crate) fn io_opt(&self) -> u32 {
        (self.layout.chunk() as u32).saturating_mul(self.members.len() as u32)
    }

    /// The members with the offset of their data areas, for the disk's
    /// queue limits.
    pub(crate) fn stack_on(&self) -> Result<KVec<StackOn<'_>>> {
        let mut v = KVec::with_capacity(self.members.len(), GFP_KERNEL)?;
        for m in self.members.iter() {
            v.push(
                StackOn {
                    bdev: &m.bdev,
                    offset_sectors: m.data_start / 512,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(v)
    }

    /// Marks the array as stopping unless the volume is open.
    pub(crate) fn begin_stop(&self) -> Result {
        let mut s = self.open.lock();
        if s.openers > 0 {
            return Err(EBUSY);
        }
        s.stopping = true;
        Ok(())
    }

    /// Fills a STATUS answer.
    pub(crate) fn status(&self, index: u32) -> uapi::Status {
        let mut st = uapi::Status {
            index,
            nr_members: self.members.len() as u32,
            layout: uapi::LAYOUT_RAID0,
            chunk_sectors: (self.layout.chunk() / 512) as u32,
            open_count: self.open.lock().openers,
            capacity_sectors: self.capacity_sectors(),
            reads: self.counters.reads.load(Relaxed),
            writes: self.counters.writes.load(Relaxed),
            flushes: self.counters.flushes.load(Relaxed),
            errors: self.counters.errors.load(Relaxed),
            array_uuid: self.identity.uuid.0,
            ..uapi::Status::default()
        };
        for (d, s) in st.name.iter_mut().zip(self.identity.name.iter()) {
            *d = *s;
        }
        for (info, m) in st.members.iter_mut().zip(self.members.iter()) {
            let (major, minor) = m.bdev.dev();
            *info = uapi::MemberInfo {
                major,
                minor,
                sectors: m.bdev.nr_sectors(),
            };
        }
        st
    }

    fn flush(&self, fan: Fanout<Self>) {
        for m in self.members.iter() {
            match fan.new_bio(&self.bioset, &m.bdev, BioOp::Flush, 0) {
                Ok(bio) => fan.submit(bio),
                Err(e) => fan.fail(Status::from_error(e)),
            }
        }
    }

    /// Splits the request's data at chunk boundaries into member bios.
    fn read_write(&self, fan: Fanout<Self>, op: BioOp) {
        let Some(mut pos) = fan.sector().checked_mul(512) else {
            fan.fail(Status::from_error(EIO));
            return;
        };
        // Segments of one chunk go to the same member bio while they fit.
        let mut cur: Option<(u32, u64, Bio)> = None;
        for seg in fan.segments() {
            let mut done = 0u32;
            while done < seg.len() {
                let Some(ext) = self.layout.map(pos) else {
                    pr_err!("request beyond the end of the volume at byte {}\n", pos);
                    fan.fail(Status::from_error(EIO));
                    return;
                };
                let n = u64::from(seg.len() - done).min(ext.len) as u32;
                let Some(piece) = seg.slice(done, n) else {
                    fan.fail(Status::from_error(EIO));
                    return;
                };
                let contiguous =
                    matches!(&cur, Some((m, next, _)) if *m == ext.member && *next == ext.offset);
                if !contiguous {
                    if let Some((_, _, bio)) = cur.take() {
                        fan.submit(bio);
                    }
                }
                if let Some((_, next, bio)) = cur.as_mut() {
                    // A chunk has at most CHUNK_BYTES / 512 segments (the
                    // queue's DMA alignment is at least 512), which is the
                    // room every bio gets: it never fills up mid-chunk, and
                    // a split there could leave a member bio misaligned.
                    if !bio.add(&piece) {
                        pr_err!("member bio full at byte {}\n", pos);
                        fan.fail(Status::from_error(EIO));
                        return;
                    }
                    *next += u64::from(n);
                } else {
                    let Some(member) = self.members.get(ext.member as usize) else {
                        fan.fail(Status::from_error(EIO));
                        return;
                    };
                    let mut bio = match fan.new_bio(&self.bioset, &member.bdev, op, NR_VECS) {
                        Ok(bio) => bio,
                        Err(e) => {
                            fan.fail(Status::from_error(e));
                            return;
                        }
                    };
                    // In bounds: the layout keeps offsets inside the data area.
                    bio.set_sector((member.data_start + ext.offset) / 512);
                    if !bio.add(&piece) {
                        pr_err!("cannot add a {}-byte segment to an empty bio\n", n);
                        fan.fail(Status::from_error(EIO));
                        return;
                    }
                    cur = Some((ext.member, ext.offset + u64::from(n), bio));
                }
                pos += u64::from(n);
                done += n;
            }
        }
        if let Some((_, _, bio)) = cur.take() {
            fan.submit(bio);
        }
    }
}

impl Operations for Array {
    fn queue_rq(&self, rq: Request<Self>) {
        match rq.op() {
            Op::Flush => {
                self.counters.flushes.add(1, Relaxed);
                self.flush(rq.fan_out());
            }
            Op::Read => {
                self.counters.reads.add(1, Relaxed);
                self.read_write(rq.fan_out(), BioOp::Read);
            }
            Op::Write => {
                self.counters.writes.add(1, Relaxed);
                let fua = rq.is_fua();
                self.read_write(rq.fan_out(), BioOp::Write { fua });
            }
            Op::Other(_) => rq.end(Status::not_supported()),
        }
    }

    fn completed(&self, status: Status) {
        if status.is_err() {
            self.counters.errors.add(1, Relaxed);
        }
    }

    fn open(&self) -> Result {
        let mut s = self.open.lock();
        if s.stopping {
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
