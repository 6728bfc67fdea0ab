// SPDX-License-Identifier: GPL-2.0

//! An assembled array: its members, its volume and its I/O path.

use crate::blk::bio::Bio;
use crate::blk::bio::BioOp;
use crate::blk::bio::BioSet;
use crate::blk::disk::Operations;
use crate::blk::disk::StackOn;
use crate::blk::iobuf::BatchDone;
use crate::blk::request::Fanout;
use crate::blk::request::Op;
use crate::blk::request::Request;
use crate::blk::Status;
use crate::format::superblock::Layout;
use crate::map::Entry;
use crate::map::Map;
use crate::members;
use crate::members::Member;
use crate::rebuild;
use crate::uapi;
use crate::writer::Io;
use crate::writer::Policy;
use crate::writer::Volume;
use crate::writer::Writer;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;
use kernel::sync::ArcBorrow;
use kernel::sync::Mutex;
use kernel::sync::SpinLock;
use kernel::workqueue;
use kernel::workqueue::Work;
use kernel::workqueue::WorkItem;

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

/// Vectors of a member read bio: a megabyte request split at every 4 KiB
/// block and page boundary stays below it.
const READ_VECS: u16 = 256;
/// Most vectors one block of a request can take (512-byte segments).
const VECS_PER_BLOCK: u16 = (BLOCK_BYTES / 512) as u16;

/// Requests waiting at most: one per tag of the volume's queue.
const MAX_DEFERRED: usize = crate::blk::disk::QUEUE_DEPTH as usize;

/// A request that must wait for the writer, handed to the deferral worker.
///
/// `queue_rq` may run inside the submission of a bio to the volume, where
/// the member bios it submits are only queued until it returns: waiting
/// there for a stripe buffer or a flush would wait for itself.
enum Deferred {
    /// A write that found no free stripe buffer after `done` blocks.
    Write {
        fan: Fanout<Array>,
        lba: u64,
        n: u64,
        done: u64,
        fua: bool,
    },
    /// A flush, or a FUA write already packed.
    Flush { fan: Fanout<Array> },
}

/// An array of members presenting one volume.
#[pin_data]
pub(crate) struct Array {
    identity: members::Identity,
    members: KVec<Member>,
    volume: Volume,
    #[pin]
    writer: Writer,
    #[pin]
    bioset: BioSet,
    #[pin]
    open: Mutex<OpenState>,
    /// Finishes written stripes.
    #[pin]
    work: Work<Array, 0>,
    #[pin]
    deferred: SpinLock<KVec<Deferred>>,
    /// Serves deferred requests.
    #[pin]
    defer_work: Work<Array, 1>,
    counters: Counters,
}

kernel::impl_has_work! {
    impl HasWork<Self, 0> for Array { self.work }
    impl HasWork<Self, 1> for Array { self.defer_work }
}

impl WorkItem<0> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        this.writer.complete(&this.io(), &[&this.volume]);
    }
}

impl WorkItem<1> for Array {
    type Pointer = Arc<Array>;

    fn run(this: Arc<Array>) {
        loop {
            let next = {
                let mut q = this.deferred.lock();
                if q.is_empty() {
                    break;
                }
                q.remove(0)
            };
            let Ok(next) = next else { break };
            this.serve_deferred(next);
        }
    }
}

impl BatchDone for Array {
    fn batch_done(this: Arc<Self>, tag: usize, status: Status) {
        this.writer.batch_ended(tag, status);
        // Already queued: that run will see this batch too.
        let _ = workqueue::system_unbound().enqueue::<_, 0>(this);
    }
}

impl Array {
    /// Claims the members named by `paths`, checks their superblocks,
    /// rebuilds the volume's map from their stripes and sets up the writer.
    pub(crate) fn new(paths: &[&CStr]) -> Result<impl PinInit<Self, Error>> {
        let (members, identity) = members::assemble(paths)?;
        let Some(entry) = identity
            .volumes
            .iter()
            .find(|v| v.layout == Layout::FullPointer)
            .copied()
        else {
            pr_err!("the array has no log-structured volume\n");
            return Err(EINVAL);
        };
        let mut policies = KVec::new();
        for (i, g) in identity.groups.iter().enumerate() {
            policies.push(Policy::from_group(i as u8, g, members.len())?, GFP_KERNEL)?;
        }
        if usize::from(entry.group) >= policies.len() {
            pr_err!("volume {} names a missing stripe group\n", entry.id);
            return Err(EINVAL);
        }
        let volume = Volume {
            id: entry.id,
            group: usize::from(entry.group),
            map: KBox::pin_init(Map::new(entry.size_blocks)?, GFP_KERNEL)?,
        };
        let found = rebuild::rebuild(&members, &identity.uuid, &[&volume])?;
        let writer = Writer::new(identity.uuid, policies, found.start)?;
        Ok(try_pin_init!(Self {
            identity,
            members,
            volume,
            writer <- writer,
            bioset <- BioSet::new(64),
            open <- kernel::new_mutex!(OpenState {
                openers: 0,
                stopping: false,
            }),
            work <- kernel::new_work!("stria_array"),
            deferred <- kernel::new_spinlock!(KVec::with_capacity(MAX_DEFERRED, GFP_KERNEL)?),
            defer_work <- kernel::new_work!("stria_deferred"),
            counters: Counters {
                reads: Atomic::new(0),
                writes: Atomic::new(0),
                flushes: Atomic::new(0),
                errors: Atomic::new(0),
            },
        }))
    }

    fn io(&self) -> Io<'_> {
        Io {
            members: &self.members,
            bioset: &self.bioset,
        }
    }

    /// Volume size in 512-byte sectors.
    pub(crate) fn capacity_sectors(&self) -> u64 {
        self.volume.map.size_blocks() * u64::from(BLOCK_BYTES / 512)
    }

    /// Preferred I/O size: a block.
    pub(crate) fn io_min(&self) -> u32 {
        BLOCK_BYTES
    }

    /// Optimal I/O size: a megabyte, the largest request.
    pub(crate) fn io_opt(&self) -> u32 {
        MAX_REQUEST_SECTORS * 512
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

    /// Writes out everything buffered and flushes the members; called once
    /// the volume's disk is gone.
    pub(crate) fn shut_down(this: &Arc<Self>) {
        if let Err(e) = this.writer.flush(this, &this.io()) {
            pr_err!(
                "cannot write out buffered data at stop: error {}\n",
                e.to_errno()
            );
            return;
        }
        // A clean stop: the superblocks vouch for every stripe, so the next
        // assembly need not check any stripe's data.
        if let Some((head, seq)) = this.writer.log_head() {
            if let Err(e) = members::record_log_head(&this.members, head, seq) {
                pr_err!("cannot record the end of the log: error {}\n", e.to_errno());
            }
        }
    }

    /// Fills a STATUS answer.
    pub(crate) fn status(&self, index: u32) -> uapi::Status {
        let map = self.volume.map.stats();
        let strip = self
            .identity
            .groups
            .get(self.volume.group)
            .map_or(0, |g| g.strip_blocks);
        let mut st = uapi::Status {
            index,
            nr_members: self.members.len() as u32,
            layout: uapi::LAYOUT_LOG,
            chunk_sectors: strip * (BLOCK_BYTES / 512),
            open_count: self.open.lock().openers,
            capacity_sectors: self.capacity_sectors(),
            reads: self.counters.reads.load(Relaxed),
            writes: self.counters.writes.load(Relaxed),
            flushes: self.counters.flushes.load(Relaxed),
            errors: self.counters.errors.load(Relaxed),
            array_uuid: self.identity.uuid.0,
            map_blocks: map.mapped,
            map_bytes: map.leaf_bytes + map.dir_bytes,
            stripes: self.writer.stats.stripes.load(Relaxed),
            partial_stripes: self.writer.stats.partial.load(Relaxed),
            ..uapi::Status::default()
        };
        for (d, s) in st.name.iter_mut().zip(self.identity.name.iter()) {
            *d = *s;
        }
        for (i, (info, m)) in st.members.iter_mut().zip(self.members.iter()).enumerate() {
            let (major, minor) = m.bdev.dev();
            *info = uapi::MemberInfo {
                major,
                minor,
                sectors: m.bdev.nr_sectors(),
                free_sectors: self.writer.free_blocks(i) * u64::from(BLOCK_BYTES / 512),
            };
        }
        st
    }

    /// Host block range of a request: first block and count.
    fn blocks_of(fan: &Fanout<Self>, size_blocks: u64) -> Result<(u64, u64)> {
        let spb = u64::from(BLOCK_BYTES / 512);
        let sector = fan.sector();
        let bytes = u64::from(fan.bytes());
        if sector % spb != 0 || bytes % u64::from(BLOCK_BYTES) != 0 {
            pr_err!("request not aligned to 4 KiB blocks at sector {}\n", sector);
            return Err(EIO);
        }
        let lba = sector / spb;
        let n = bytes / u64::from(BLOCK_BYTES);
        if lba.checked_add(n).is_none_or(|e| e > size_blocks) {
            pr_err!(
                "request beyond the end of the volume at sector {}\n",
                sector
            );
            return Err(EIO);
        }
        Ok((lba, n))
    }

    /// Hands `d` to the deferral worker.
    fn defer(this: &Arc<Self>, d: Deferred) {
        if let Err(kernel::alloc::kvec::PushError(d)) = this.deferred.lock().push_within_capacity(d)
        {
            // Cannot happen: there are no more requests than room.
            pr_err!("too many deferred requests\n");
            let (Deferred::Write { fan, .. } | Deferred::Flush { fan }) = d;
            fan.fail(Status::from_error(EIO));
            return;
        }
        let _ = workqueue::system_unbound().enqueue::<_, 1>(this.clone());
    }

    /// Packs a write without waiting; what must wait is deferred.
    fn write(this: &Arc<Self>, fan: Fanout<Self>, fua: bool) {
        let r = Self::blocks_of(&fan, this.volume.map.size_blocks()).and_then(|(lba, n)| {
            this.volume.map.prepare(lba, n)?;
            let done = this
                .writer
                .write(this, &this.io(), &this.volume, lba, n, 0, &fan, false)?;
            Ok((lba, n, done))
        });
        match r {
            Err(e) => fan.fail(Status::from_error(e)),
            Ok((lba, n, done)) if done < n => Self::defer(
                this,
                Deferred::Write {
                    fan,
                    lba,
                    n,
                    done,
                    fua,
                },
            ),
            Ok(_) if fua => Self::defer(this, Deferred::Flush { fan }),
            Ok(_) => {}
        }
    }

    /// Serves a deferred request, waiting as needed (worker context).
    fn serve_deferred(self: &Arc<Self>, d: Deferred) {
        let io = self.io();
        let (fan, r) = match d {
            Deferred::Write {
                fan,
                lba,
                n,
                done,
                fua,
            } => {
                let r = self
                    .writer
                    .write(self, &io, &self.volume, lba, n, done, &fan, true)
                    .and_then(|_| {
                        if fua {
                            self.writer.flush(self, &io)
                        } else {
                            Ok(())
                        }
                    });
                (fan, r)
            }
            Deferred::Flush { fan } => {
                let r = self.writer.flush(self, &io);
                (fan, r)
            }
        };
        if let Err(e) = r {
            fan.fail(Status::from_error(e));
        }
    }

    /// Serves a read from the map: unwritten blocks as zeros, blocks of
    /// stripes still being written from memory, the rest from the members,
    /// with contiguous member blocks in one bio.
    fn read(&self, fan: &Fanout<Self>) -> Result {
        let (lba, _) = Self::blocks_of(fan, self.volume.map.size_blocks())?;
        let block = u64::from(BLOCK_BYTES);
        let mut pos = lba * block;
        // (member, next member byte, vectors used, bio)
        let mut cur: Option<(u8, u64, u16, Bio)> = None;
        for seg in fan.segments() {
            let mut done = 0u32;
            while done < seg.len() {
                let inb = pos % block;
                let n = (seg.len() - done).min((block - inb) as u32);
                let piece = seg.slice(done, n).ok_or(EIO)?;
                let mut map = self.volume.map.lock();
                match map.get(pos / block) {
                    Entry::Unmapped => {
                        drop(map);
                        if !piece.zero() {
                            return Err(EIO);
                        }
                    }
                    Entry::Mem { slot, offset } => {
                        let off = offset as usize * BLOCK_BYTES as usize + inb as usize;
                        let ok = self.writer.read_mem(slot, off, &piece);
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
                            if let Some((_, _, _, bio)) = cur.take() {
                                fan.submit(bio);
                            }
                            let m = self.members.get(usize::from(member)).ok_or(EIO)?;
                            let mut bio =
                                fan.new_bio(&self.bioset, &m.bdev, BioOp::Read, READ_VECS)?;
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
}

impl Operations for Array {
    fn queue_rq(this: ArcBorrow<'_, Self>, rq: Request<Self>) {
        let this: Arc<Self> = this.into();
        let op = rq.op();
        let fua = rq.is_fua();
        let fan = rq.fan_out();
        match op {
            Op::Flush => {
                this.counters.flushes.add(1, Relaxed);
                Self::defer(&this, Deferred::Flush { fan });
            }
            Op::Read => {
                this.counters.reads.add(1, Relaxed);
                if let Err(e) = this.read(&fan) {
                    fan.fail(Status::from_error(e));
                }
            }
            Op::Write => {
                this.counters.writes.add(1, Relaxed);
                Self::write(&this, fan, fua);
            }
            Op::Other(_) => fan.fail(Status::not_supported()),
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
