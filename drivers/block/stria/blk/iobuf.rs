// SPDX-License-Identifier: GPL-2.0

//! Driver-owned buffers and the batches of member bios that write them.
//!
//! The log-structured writer keeps host data in its own memory until the
//! stripe holding it is written: an [`IoBuf`] is that memory, and a
//! [`Batch`] writes parts of several of them to several members and reports
//! once, when the last bio has ended.

use super::bdev::Bdev;
use super::bio::BioOp;
use super::bio::BioSet;
use super::ffi;
use super::Status;
use core::ptr::NonNull;
use kernel::bindings;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::atomic::Atomic;
use kernel::sync::atomic::Full;
use kernel::sync::atomic::Relaxed;
use kernel::sync::lock::spinlock::SpinLock;
use kernel::sync::Arc;
use kernel::sync::LockClassKey;

/// Bytes per page of a buffer.
const PAGE: usize = kernel::page::PAGE_SIZE;

/// Memory of an [`IoBuf`].
enum Bytes {
    /// Physically contiguous, in the direct map: one bio vector, and the
    /// cheapest memory to copy into.
    Kmalloc(KVec<u8>),
    /// Virtually contiguous only, when no contiguous run was free.
    Vmalloc(VVec<u8>),
}

impl Bytes {
    fn slice_mut(&mut self) -> &mut [u8] {
        match self {
            Bytes::Kmalloc(v) => v.as_mut_slice(),
            Bytes::Vmalloc(v) => v.as_mut_slice(),
        }
    }
}

/// A byte buffer that member bios can carry.
///
/// CPU access goes through a spinlock; a bio reads the memory directly,
/// which is why a buffer must not be changed while a [`Batch`] writing it
/// is in flight (the writer's rule, not a memory-safety one: the device
/// would just see a mix of old and new bytes).
///
/// # Invariants
///
/// `bytes` is never resized, so its memory stays at the address bios were
/// given for as long as the buffer lives; `vmalloc` tells which kind it is.
#[pin_data]
pub(crate) struct IoBuf {
    #[pin]
    bytes: SpinLock<Bytes>,
    len: usize,
    vmalloc: bool,
}

impl IoBuf {
    /// A zeroed buffer of `len` bytes; `name` and `key` give its lock a
    /// class of its own, so that buffers of different roles may nest.
    pub(crate) fn new(
        len: usize,
        name: &'static CStr,
        key: Pin<&'static LockClassKey>,
    ) -> Result<Arc<Self>> {
        let bytes = match KVec::from_elem(0u8, len, GFP_KERNEL | __GFP_NOWARN) {
            Ok(v) => Bytes::Kmalloc(v),
            Err(_) => Bytes::Vmalloc(VVec::from_elem(0u8, len, GFP_KERNEL)?),
        };
        let vmalloc = matches!(bytes, Bytes::Vmalloc(_));
        // INVARIANT: Nothing below ever resizes `bytes`.
        Arc::pin_init(
            pin_init!(Self {
                bytes <- SpinLock::new(bytes, name, key),
                len,
                vmalloc,
            }),
            GFP_KERNEL,
        )
    }

    /// Runs `f` on the bytes, under the buffer's lock.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let mut g = self.bytes.lock();
        f(g.slice_mut())
    }

    /// Address of byte `off` for a bio, if `off + len` lies in the buffer.
    fn addr(&self, off: usize, len: usize) -> Option<*mut u8> {
        if off.checked_add(len)? > self.len {
            return None;
        }
        let mut g = self.bytes.lock();
        // The pointer stays valid after the guard goes: see the invariant.
        Some(g.slice_mut().as_mut_ptr().wrapping_add(off))
    }

    /// Bio vectors `len` bytes from `off` take at most.
    fn vecs(&self, off: usize, len: usize) -> usize {
        if self.vmalloc {
            (off % PAGE + len).div_ceil(PAGE)
        } else {
            1
        }
    }
}

/// Told when a [`Batch`] has ended.
pub(crate) trait BatchDone: Send + Sync + 'static {
    /// A batch is being submitted: from now on it holds its reference to
    /// the owner until [`Self::batch_done`] gets it.
    fn batch_started(&self);

    /// The last bio of the batch tagged `tag` ended; `status` is the first
    /// error any of them saw. Runs in interrupt context: atomics and
    /// queueing work only.
    fn batch_done(this: Arc<Self>, tag: usize, status: Status);
}

/// State shared by the bios of a submitted batch.
struct Ctx<T: BatchDone> {
    pending: Atomic<u32>,
    status: Atomic<u32>,
    tag: usize,
    owner: Arc<T>,
    /// Keeps the buffers' memory alive until the last bio has ended.
    bufs: KVec<Arc<IoBuf>>,
}

/// Bios built but not submitted; put back if dropped.
///
/// # Invariants
///
/// Every pointer is a bio we allocated and have not submitted.
struct Unsubmitted(KVec<NonNull<bindings::bio>>);

// SAFETY: Unsubmitted bios are plain memory owned by this value.
unsafe impl Send for Unsubmitted {}

impl Drop for Unsubmitted {
    fn drop(&mut self) {
        for bio in self.0.iter() {
            // SAFETY: By the type invariant these were never submitted.
            unsafe { bindings::bio_put(bio.as_ptr()) };
        }
    }
}

/// Member bios writing parts of [`IoBuf`]s, ended together.
///
/// # Invariants
///
/// The pages of every bio in `bios` lie in buffers held by `ctx.bufs`.
pub(crate) struct Batch<T: BatchDone> {
    ctx: KBox<Ctx<T>>,
    bios: Unsubmitted,
}

/// Most bios one strip's [`Batch::write`] takes: its header block and
/// `strip_bytes` of vmalloc memory, a vector per page touched (one more
/// where the strip does not start on a page), and one more bio where a
/// part does not fit the room the last one had left.
pub(crate) fn strip_bios(strip_bytes: usize) -> Option<usize> {
    let vecs = strip_bytes.div_ceil(PAGE).checked_add(2)?;
    vecs.div_ceil(bindings::BIO_MAX_VECS as usize)
        .checked_add(1)
}

impl<T: BatchDone> Batch<T> {
    /// An empty batch reporting to `owner` with `tag`.
    pub(crate) fn new(owner: Arc<T>, tag: usize) -> Result<Self> {
        Ok(Self {
            ctx: KBox::new(
                Ctx {
                    pending: Atomic::new(0),
                    status: Atomic::new(0),
                    tag,
                    owner,
                    bufs: KVec::new(),
                },
                GFP_KERNEL,
            )?,
            bios: Unsubmitted(KVec::new()),
        })
    }

    /// Adds a write of `parts` — `(buffer, byte offset, length)`, each a
    /// whole number of 512-byte sectors — laid end to end on `bdev` from
    /// `sector` on, in as many bios as [`bindings::BIO_MAX_VECS`] requires
    /// (a strip in vmalloc memory takes a vector per page).
    pub(crate) fn write(
        &mut self,
        set: &BioSet,
        bdev: &Bdev,
        fua: bool,
        sector: u64,
        parts: &[(&Arc<IoBuf>, usize, usize)],
    ) -> Result {
        let mut pages = 0usize;
        for (buf, off, len) in parts {
            if len % 512 != 0 || *len == 0 {
                return Err(EINVAL);
            }
            buf.addr(*off, *len).ok_or(EINVAL)?;
            pages = pages.checked_add(buf.vecs(*off, *len)).ok_or(EINVAL)?;
        }
        let first = self.bios.0.len();
        let r = self.add_bios(set, bdev, fua, sector, parts, pages);
        if r.is_err() {
            // Bios of a write that failed half-way are not submitted.
            while self.bios.0.len() > first {
                if let Some(bio) = self.bios.0.pop() {
                    // SAFETY: By the type invariant it was never submitted.
                    unsafe { bindings::bio_put(bio.as_ptr()) };
                }
            }
        }
        r
    }

    /// [`Self::write`] of `parts`, checked, which take `pages` vectors.
    fn add_bios(
        &mut self,
        set: &BioSet,
        bdev: &Bdev,
        fua: bool,
        mut sector: u64,
        parts: &[(&Arc<IoBuf>, usize, usize)],
        mut pages: usize,
    ) -> Result {
        let max = bindings::BIO_MAX_VECS as usize;
        self.ctx.bufs.reserve(parts.len(), GFP_KERNEL)?;
        // The bio being filled and the vectors it has room for.
        let mut cur: Option<(NonNull<bindings::bio>, usize)> = None;
        for (buf, off, len) in parts {
            self.ctx
                .bufs
                .push_within_capacity((*buf).clone())
                .map_err(|_| ENOMEM)?;
            let (mut off, mut len) = (*off, *len);
            while len > 0 {
                let (bio, room, fresh) = match cur {
                    Some((bio, room)) if room > 0 => (bio, room, false),
                    _ => {
                        let nr = pages.clamp(1, max);
                        (self.new_bio(set, bdev, fua, sector, nr)?, nr, true)
                    }
                };
                // As much of the part as `room` vectors carry, in sectors.
                let take = if buf.vmalloc {
                    let fit = room
                        .checked_mul(PAGE)
                        .ok_or(EINVAL)?
                        .saturating_sub(off % PAGE);
                    len.min(fit) / 512 * 512
                } else {
                    len
                };
                if take == 0 {
                    // Not even a sector fits in an empty bio: misaligned.
                    if fresh {
                        return Err(EINVAL);
                    }
                    cur = None;
                    continue;
                }
                let addr = buf.addr(off, take).ok_or(EINVAL)?;
                let n = u32::try_from(take).map_err(|_| EINVAL)?;
                let ok = if buf.vmalloc {
                    // SAFETY: `addr..addr + take` lies in the buffer's vmalloc
                    // memory, which the batch keeps alive (`bufs`) until the
                    // bio has ended; the bio has a vector per page touched.
                    unsafe { bindings::bio_add_vmalloc(bio.as_ptr(), addr.cast(), n) }
                } else {
                    // SAFETY: As above, for physically contiguous kmalloc
                    // memory, which takes one vector.
                    unsafe { bindings::bio_add_virt_nofail(bio.as_ptr(), addr.cast(), n) };
                    true
                };
                if !ok {
                    return Err(EINVAL);
                }
                let used = buf.vecs(off, take);
                pages = pages.saturating_sub(used);
                cur = Some((bio, room.saturating_sub(used)));
                off += take;
                len -= take;
                sector = sector.checked_add((take / 512) as u64).ok_or(EINVAL)?;
            }
        }
        Ok(())
    }

    /// A write bio of `nr_vecs` vectors on `bdev` at `sector`, kept in the
    /// batch.
    fn new_bio(
        &mut self,
        set: &BioSet,
        bdev: &Bdev,
        fua: bool,
        sector: u64,
        nr_vecs: usize,
    ) -> Result<NonNull<bindings::bio>> {
        let nr_vecs = u16::try_from(nr_vecs)
            .ok()
            .filter(|n| *n > 0 && u32::from(*n) <= bindings::BIO_MAX_VECS)
            .ok_or(EINVAL)?;
        self.bios.0.reserve(1, GFP_KERNEL)?;
        // SAFETY: `set` is initialised and `bdev` open; GFP_NOIO keeps
        // reclaim from issuing I/O back to us.
        let bio = unsafe {
            bindings::bio_alloc_bioset(
                bdev.raw(),
                nr_vecs,
                BioOp::Write { fua }.opf(),
                ffi::stria_gfp_noio(),
                set.inner.get(),
            )
        };
        let bio = NonNull::new(bio).ok_or(ENOMEM)?;
        // SAFETY: The bio is ours and unsubmitted.
        unsafe { (*bio.as_ptr()).bi_iter.bi_sector = sector };
        // INVARIANT: Its pages, added by the caller, lie in buffers held
        // by `ctx` (pushed before they are added).
        self.bios.0.push_within_capacity(bio).map_err(|_| ENOMEM)?;
        Ok(bio)
    }

    /// Submits every bio; the owner hears of the batch once all have ended
    /// (at once, with success, for an empty batch).
    pub(crate) fn submit(self) {
        let Batch { ctx, mut bios } = self;
        ctx.owner.batch_started();
        let bios = core::mem::take(&mut bios.0);
        let n = bios.len() as u32;
        if n == 0 {
            let Ctx { tag, owner, .. } = KBox::into_inner(ctx);
            T::batch_done(owner, tag, Status::OK);
            return;
        }
        ctx.pending.store(n, Relaxed);
        let ctx = KBox::into_raw(ctx);
        for bio in bios.iter() {
            // SAFETY: Each bio is fully built and ours; `ctx` outlives it
            // (freed by the last completion).
            unsafe {
                (*bio.as_ptr()).bi_end_io = Some(end_io::<T>);
                (*bio.as_ptr()).bi_private = ctx.cast();
                bindings::submit_bio(bio.as_ptr());
            }
        }
    }
}

/// Completion of a bio of a submitted [`Batch`].
///
/// # Safety
///
/// Called by the block layer for a bio submitted by [`Batch::submit`].
unsafe extern "C" fn end_io<T: BatchDone>(bio: *mut bindings::bio) {
    // SAFETY: The bio is done; `bi_private` is its batch's context, alive
    // until its last bio has ended.
    let (ctx, status) = unsafe { ((*bio).bi_private.cast::<Ctx<T>>(), (*bio).bi_status) };
    // SAFETY: Nothing uses the bio after its completion.
    unsafe { bindings::bio_put(bio) };
    // SAFETY: See above.
    let c = unsafe { &*ctx };
    if status != 0 {
        let _ = c.status.cmpxchg(0, u32::from(status), Full);
    }
    if c.pending.fetch_sub(1, Full) != 1 {
        return;
    }
    // SAFETY: That was the last bio: the context is ours again.
    let ctx = unsafe { KBox::from_raw(ctx) };
    let status = Status(ctx.status.load(Relaxed) as u8);
    let Ctx {
        tag, owner, bufs, ..
    } = KBox::into_inner(ctx);
    T::batch_done(owner, tag, status);
    drop(bufs);
}
